using System.Collections.Concurrent;
using System.Text;

namespace Remus.Simulation;

/// <summary>Many seeds at a time, and a table of what they showed by scenario (the tests and the benchmark share it).</summary>
public static class SimulationBatch
{
    private static readonly Lazy<bool> WarmedUp = new(() =>
    {
        // The engine's timers (the backup's watchdog) run on the thread pool: a harness that starved the pool would
        // delay them and pass for a slow protocol. The runs use threads of their own; a few more pool threads keep
        // other tests of the same process from starving it either.
        ThreadPool.GetMinThreads(out int workers, out int io);
        if (workers < 16) ThreadPool.SetMinThreads(16, io);
        SimulationRun.Execute(Scenario.Make(ScenarioKind.Clean, 0, SimProfile.Ci)); // the first run in a process is mostly JIT
        return true;
    });

    /// <summary>Runs the scenarios, <paramref name="parallel"/> at a time, each on a thread of its own (the runs mostly wait: real time, small intervals).</summary>
    public static List<SimulationResult> Run(IEnumerable<Scenario> scenarios, Mutation mutation = Mutation.None, int parallel = 3,
        Action<int>? progress = null)
    {
        _ = WarmedUp.Value;
        var queue = new ConcurrentQueue<Scenario>(scenarios);
        var results = new ConcurrentBag<SimulationResult>();
        int done = 0;
        var workers = Enumerable.Range(0, parallel).Select(_ => new Thread(() =>
        {
            while (queue.TryDequeue(out var s))
            {
                results.Add(SimulationRun.Execute(s, mutation));
                progress?.Invoke(Interlocked.Increment(ref done));
            }
        }) { IsBackground = true, Name = "sim-worker" }).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        return [.. results.OrderBy(r => r.Scenario.Seed)];
    }

    /// <summary>
    /// Runs, failures, faults fired, takeovers, both copies running at the end, runs the machine stalled for more
    /// than half the timeout, and times, by scenario kind.
    /// </summary>
    public static string Table(IReadOnlyCollection<SimulationResult> results)
    {
        var b = new StringBuilder();
        b.AppendLine($"{"scenario",-32} {"runs",5} {"failed",6} {"fired",5} {"takeover",8} {"2 copies",8} {"stalled",7} {"mean ms",7} {"max ms",7}");
        foreach (var g in results.GroupBy(r => r.Scenario.Kind).OrderBy(g => g.Key))
            b.AppendLine($"{g.Key,-32} {g.Count(),5} {g.Count(r => !r.Passed),6} {g.Count(r => r.FaultFired),5} {g.Count(r => r.TookOver),8} " +
                         $"{g.Count(r => r.TwoCopiesRunning),8} {g.Count(r => r.MachineStalled),7} {g.Average(r => r.DurationMs),7:F0} {g.Max(r => r.DurationMs),7:F0}");
        if (results.Count > 0)
        {
            var d = results.Select(r => r.DurationMs).Order().ToArray();
            b.AppendLine($"total: {results.Count} seeds, {results.Count(r => !r.Passed)} failed; per seed {d.Average():F0} ms on average, " +
                         $"median {d[d.Length / 2]:F0} ms, max {d[^1]:F0} ms");
        }
        return b.ToString();
    }
}
