using System.Diagnostics;
using Remus.Simulation;

namespace Remus.Bench;

/// <summary>
/// `remus-bench simulate`: the Remus fault-injection harness over many seeds. Prints the runs, failures, faults
/// fired and takeovers by scenario, each failing seed with its first violation, and the full report (scenario,
/// violations, the world's transcript, the events) of the first few.
/// Options: --seeds N (2000) --from S (1) --kinds all|ci|witness|K1,K2 (all) --profile fast|ci (fast)
/// --parallel P (2) --mutation None|GuestBypassesOutputCommit|ReleaseBeforeAck --reports K (3) --out FILE (every failing seed's report)
/// --seed S (one seed, full report)
/// </summary>
static class SimulationBench
{
    public static int Run(string[] args)
    {
        string? Opt(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        int seeds = int.Parse(Opt("--seeds") ?? "2000"), from = int.Parse(Opt("--from") ?? "1");
        int parallel = int.Parse(Opt("--parallel") ?? "2"), reports = int.Parse(Opt("--reports") ?? "3");
        var profile = Opt("--profile") == "ci" ? SimProfile.Ci : SimProfile.Fast;
        var mutation = Enum.Parse<Mutation>(Opt("--mutation") ?? "None");
        IReadOnlyList<ScenarioKind> kinds = (Opt("--kinds") ?? "all") switch
        {
            "all" => Scenario.AllKinds,
            "ci" => ScenarioSets.Ci,
            "witness" => ScenarioSets.NeedsWitness,
            var list => [.. list.Split(',').Select(Enum.Parse<ScenarioKind>)],
        };
        if (Opt("--seed") is { } one)
        {
            var r = SimulationRun.Execute(Scenario.FromSeed(int.Parse(one), kinds, profile), mutation);
            Console.Write(r.Report());
            return r.Passed ? 0 : 1;
        }

        Console.WriteLine($"simulate: seeds {from}..{from + seeds - 1}, {kinds.Count} scenario kinds, interval {profile.IntervalMinMs}-{profile.IntervalMaxMs} ms, " +
                          $"timeout {profile.TimeoutMinMs}-{profile.TimeoutMaxMs} ms, {parallel} at a time{(mutation == Mutation.None ? "" : $", mutation {mutation}")}");
        var wall = Stopwatch.StartNew();
        var results = SimulationBatch.Run(Enumerable.Range(from, seeds).Select(seed => Scenario.FromSeed(seed, kinds, profile)), mutation, parallel,
            n => { if (n % 250 == 0) Console.Error.WriteLine($"  {n}/{seeds} seeds, {wall.Elapsed.TotalSeconds:F0} s"); });
        Console.Write(SimulationBatch.Table(results));
        Console.WriteLine($"{wall.Elapsed.TotalSeconds:F1} s wall, {parallel} runs at a time");
        // A two-way partition of live hosts is outside the guarantee until the witness exists: its own line, never hidden.
        var partitions = results.Where(r => ScenarioSets.IsTwoWayPartition(r.Scenario)).ToList();
        Console.WriteLine($"two-way partition: {partitions.Count} runs, {partitions.Count(r => !r.Passed)} ended with a violation " +
                          $"({partitions.Count(r => r.Violations.Any(v => v.StartsWith("two copies", StringComparison.Ordinal)))} with two copies) — needs the witness, issue 12");
        var covered = results.Where(r => ScenarioSets.IsCovered(r.Scenario)).ToList();
        Console.WriteLine($"covered by the guarantee: {covered.Count} runs, {covered.Count(r => !r.Passed)} violations");
        var failed = results.Where(r => !r.Passed).OrderBy(r => r.Scenario.Seed).ToList();
        if (failed.Count == 0) return 0;
        Console.WriteLine("failing seeds (first violation):");
        foreach (var r in failed) Console.WriteLine($"  {r.Scenario}\n      {r.Violations[0]}");
        Console.WriteLine("violations by kind:");
        foreach (var g in failed.GroupBy(r => (r.Scenario.Kind, Kind: ViolationKind(r.Violations[0]))).OrderBy(g => g.Key.Item1))
            Console.WriteLine($"  {g.Key.Item1,-32} {g.Key.Kind,-28} {g.Count(),5}");
        foreach (var r in failed.Take(reports)) Console.Write(r.Report());
        if (Opt("--out") is { } file)
        {
            File.WriteAllText(file, string.Concat(failed.Select(r => r.Report())));
            Console.WriteLine($"the full reports of the {failed.Count} failing seeds are in {file}");
        }
        return covered.Any(r => !r.Passed) ? 1 : 0;
    }

    private static string ViolationKind(string v) => v.Split(':')[0] switch
    {
        var k when k.StartsWith("two copies", StringComparison.Ordinal) => "two copies released",
        var k when k.StartsWith("the backup took over from", StringComparison.Ordinal) => "incoherent checkpoint",
        var k when k.StartsWith("the backup took over but", StringComparison.Ordinal) => "takeover made no progress",
        var k when k.StartsWith("the repeated block", StringComparison.Ordinal) => "repeat longer than an epoch",
        var k => k,
    };
}
