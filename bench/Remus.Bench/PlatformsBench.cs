using System.Globalization;
using System.Text;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

namespace Remus.Bench;

/// <summary>
/// `remus-bench platforms [--runs N] [--quick]`: every vCPU platform this machine has (ptrace; KVM when /dev/kvm is
/// usable and passes the product's self-test, <see cref="PlatformSelection"/>), measured with the same guests and
/// the same code as the per-figure benchmarks, printed side by side in one Markdown table with the native baseline
/// of this machine and each figure's ratio to it:
/// <list type="bullet">
/// <item>syscall round trip p50 and p99 (<c>syscalls N dist</c>: each getppid timed alone with the TSC);</item>
/// <item>a CPU-bound guest's own CPU time (<c>cpu 20</c>) vs the same binary run natively (speed ratio);</item>
/// <item>checkpoint pause p50/p99 at 40 Hz by dirty-set size (16, 256, 4096 pages per epoch) vs a memcpy of the
/// same bytes;</item>
/// <item>a writer dirtying 256 pages per pass under Remus at 100 Hz: throughput per CPU-second of the guest and per
/// wall second vs native and vs unprotected, the pause, and the output latency output commit adds (its console lines
/// carry CLOCK_REALTIME stamps);</item>
/// <item>live-migration downtime of an idle domain and of a writer (goal ≤ 10 ms; there is no native baseline).</item>
/// </list>
/// Each run measures every figure on every platform in turn (natively first), so a drift of a loaded machine does not
/// favour one; each cell is the median of the runs. Figures only, never a verdict.
/// <para>Guest throughput is also taken per CPU-second of the guest (CLOCK_PROCESS_CPUTIME_ID: natively the process,
/// in a domain the ptrace stub process or the KVM vCPU thread): on a machine shared with other work, wall-time
/// throughput of a CPU-bound program measures its share of the CPUs more than its speed (measured here at load 18-20:
/// the writer protected at 100 Hz made 1.4-1.6x the passes per wall second of the same writer unprotected, a task that
/// sleeps often being favoured by the scheduler). Per CPU-second leaves out the VMM's own work (the pauses, which have
/// their own row).</para>
/// </summary>
static class PlatformsBench
{
    private static readonly int[] DirtySets = [16, 256, 4096];
    private const int WriterPages = 256, WriterHz = 100, PauseHz = 40;

    private sealed record Platform(string Name, PlatformKind Kind);

    /// <summary>Per-run samples of one figure in one column (a platform's name, or "native").</summary>
    private sealed class Samples
    {
        private readonly Dictionary<(string Figure, string Column), List<double>> _all = [];

        public void Add(string figure, string column, double value)
        {
            if (!_all.TryGetValue((figure, column), out var list)) _all[(figure, column)] = list = [];
            list.Add(value);
        }

        public double Median(string figure, string column) =>
            _all.TryGetValue((figure, column), out var list) && list.Count > 0 ? Bench.Median(list) : double.NaN;
    }

    public static void Run(GuestBinaries guests, int runs, bool quick)
    {
        var platforms = Available();
        PrintHeader(platforms, runs, quick);
        if (platforms.Count == 0) return;

        string sys = guests.Build("syscalls.c"), cpu = guests.Build("cpu.c"), writer = guests.Build("writer.c");
        int calls = quick ? 4000 : 20000;
        string cpuRounds = quick ? "5" : "20";
        double pauseSeconds = quick ? 1.5 : 2.5, writerSeconds = quick ? 2 : 3;
        var s = new Samples();
        var failures = new Failures();
        var pagesPerEpoch = new Samples();

        for (int r = 0; r < runs; r++)
        {
            Console.Error.WriteLine($"run {r + 1} of {runs}: syscall, cpu");
            var native = Measure.Native(sys, (calls * 10).ToString(CultureInfo.InvariantCulture), "dist").Stdout;
            s.Add("sys50", "native", Measure.Field(native, "p50_ns") / 1000);
            s.Add("sys99", "native", Measure.Field(native, "p99_ns") / 1000);
            var nativeCpu = Measure.Native(cpu, cpuRounds).Stdout;
            s.Add("cpu", "native", Measure.Field(nativeCpu, "cpu_seconds"));
            s.Add("cpu-wall", "native", Measure.Field(nativeCpu, "seconds"));
            foreach (var p in platforms.Where(p => failures.Ok("sys", p)))
                failures.Try("sys", p, () =>
            {
                var o = Measure.InDomain(p.Kind, sys, calls.ToString(CultureInfo.InvariantCulture), "dist").Stdout;
                s.Add("sys50", p.Name, Measure.Field(o, "p50_ns") / 1000);
                s.Add("sys99", p.Name, Measure.Field(o, "p99_ns") / 1000);
                var c = Measure.InDomain(p.Kind, cpu, cpuRounds).Stdout;
                s.Add("cpu", p.Name, Measure.Field(c, "cpu_seconds"));
                s.Add("cpu-wall", p.Name, Measure.Field(c, "seconds"));
            });

            Console.Error.WriteLine($"run {r + 1} of {runs}: checkpoint pause by dirty-set size");
            foreach (int pages in DirtySets)
                foreach (var p in platforms.Where(p => failures.Ok("pause", p)))
                    failures.Try("pause", p, () =>
                {
                    var st = CheckpointBenches.Protect(CheckpointBenches.DirtySetSpec(guests, pages, p.Kind),
                        TimeSpan.FromMilliseconds(1000.0 / PauseHz), blackhole: false, compress: true, seconds: pauseSeconds, out _);
                    s.Add($"pause50-{pages}", p.Name, st.PauseP50Ms);
                    s.Add($"pause99-{pages}", p.Name, st.PauseP99Ms);
                    pagesPerEpoch.Add($"{pages}", p.Name, st.PagesPerEpoch);
                });

            Console.Error.WriteLine($"run {r + 1} of {runs}: writer at {WriterHz} Hz");
            string[] wargs = [WriterPages.ToString(CultureInfo.InvariantCulture), (1000 / WriterHz).ToString(CultureInfo.InvariantCulture),
                writerSeconds.ToString(CultureInfo.InvariantCulture)];
            var nativeWriter = Measure.Native(writer, wargs).Stdout;
            s.Add("wrate", "native", PassesPer(nativeWriter, "cpu_seconds"));
            s.Add("wrate-wall", "native", PassesPer(nativeWriter, "seconds"));
            foreach (var p in platforms.Where(p => failures.Ok("writer", p)))
                failures.Try("writer", p, () =>
            {
                var spec = new DomainSpec { ProgramPath = writer, Args = wargs, MemoryMiB = 64, Platform = p.Kind };
                var (plain, plainDelays, _) = RunWriter(spec, null);
                var (prot, protDelays, stats) = RunWriter(spec, TimeSpan.FromMilliseconds(1000.0 / WriterHz));
                s.Add("wrate", p.Name, PassesPer(prot, "cpu_seconds"));
                s.Add("wrate-plain", p.Name, PassesPer(plain, "cpu_seconds"));
                s.Add("wrate-wall", p.Name, PassesPer(prot, "seconds"));
                s.Add("wrate-wall-plain", p.Name, PassesPer(plain, "seconds"));
                s.Add("wpause50", p.Name, stats!.PauseP50Ms);
                s.Add("wpause99", p.Name, stats.PauseP99Ms);
                pagesPerEpoch.Add("writer", p.Name, stats.PagesPerEpoch);
                s.Add("wlat50", p.Name, Bench.Median(protDelays) - Bench.Median(plainDelays));
                s.Add("wlat99", p.Name, Bench.Percentile(protDelays, 0.99) - Bench.Median(plainDelays));
            });

            Console.Error.WriteLine($"run {r + 1} of {runs}: migration");
            foreach (var p in platforms.Where(p => failures.Ok("migration", p)))
                failures.Try("migration", p, () =>
            {
                var idle = CheckpointBenches.MigrateOnce(CheckpointBenches.IdleMigrationSpec(guests, p.Kind), CheckpointBenches.IdleWarmupMs);
                s.Add("mig-idle", p.Name, idle.Downtime.TotalMilliseconds);
                s.Add("mig-idle-total", p.Name, idle.Total.TotalMilliseconds);
                var busy = CheckpointBenches.MigrateOnce(CheckpointBenches.WriterMigrationSpec(guests, p.Kind), CheckpointBenches.WriterWarmupMs);
                s.Add("mig-writer", p.Name, busy.Downtime.TotalMilliseconds);
                s.Add("mig-writer-total", p.Name, busy.Total.TotalMilliseconds);
            });
        }

        var table = new Table(platforms.Select(p => p.Name).ToList(), failures);
        string Us(double us) => us >= 100 ? $"{us:F0} µs" : us >= 10 ? $"{us:F1} µs" : $"{us:F2} µs";
        string Ms(double ms) => ms >= 100 ? $"{ms:F0} ms" : ms >= 10 ? $"{ms:F1} ms" : ms >= 0.1 ? $"{ms:F2} ms" : Us(ms * 1000);
        string Times(double x) => x >= 100 ? $"×{x:F0}" : x >= 10 ? $"×{x:F1}" : $"×{x:F2}";

        foreach (var (key, what) in new[] { ("sys50", "syscall round trip (getppid), p50"), ("sys99", "syscall round trip (getppid), p99") })
        {
            double n = s.Median(key, "native");
            table.Add("sys", what, Us(n), p => $"{Us(s.Median(key, p))} ({Times(s.Median(key, p) / n)})");
        }
        {
            double n = s.Median("cpu", "native"), w = s.Median("cpu-wall", "native");
            table.Add("sys", $"CPU-bound guest (`cpu {cpuRounds}`), its CPU time (wall time)", $"{n:F3} s ({w:F3} s)",
                p => $"{s.Median("cpu", p):F3} s, speed {n / s.Median("cpu", p):F2} ({s.Median("cpu-wall", p):F3} s, {w / s.Median("cpu-wall", p):F2})");
        }
        foreach (int pages in DirtySets)
        {
            double copy = MemcpyMs(pages);
            table.Add("pause", $"checkpoint pause p50 / p99, {pages} pages dirtied per epoch ({PauseHz} Hz)", $"memcpy {Ms(copy)}",
                p => $"{Ms(s.Median($"pause50-{pages}", p))} / {Ms(s.Median($"pause99-{pages}", p))} ({Times(s.Median($"pause50-{pages}", p) / copy)})");
        }
        {
            double n = s.Median("wrate", "native"), w = s.Median("wrate-wall", "native");
            table.Add("writer", $"writer ({WriterPages} pages per pass) protected at {WriterHz} Hz: passes per CPU-second of the guest", $"{n / 1000:F0} k",
                p => $"{s.Median("wrate", p) / 1000:F0} k: {s.Median("wrate", p) / n:F2} of native, {s.Median("wrate", p) / s.Median("wrate-plain", p):F2} of unprotected");
            table.Add("writer", $"the same per wall second (on a loaded machine: the guest's share of the CPUs)", $"{w / 1000:F0} k",
                p => $"{s.Median("wrate-wall", p) / 1000:F0} k: {s.Median("wrate-wall", p) / w:F2} of native, {s.Median("wrate-wall", p) / s.Median("wrate-wall-plain", p):F2} of unprotected");
            double copy = MemcpyMs(WriterPages);
            table.Add("writer", $"writer at {WriterHz} Hz: checkpoint pause p50 / p99", $"memcpy {Ms(copy)}",
                p => $"{Ms(s.Median("wpause50", p))} / {Ms(s.Median("wpause99", p))} ({Times(s.Median("wpause50", p) / copy)})");
            table.Add("writer", $"writer at {WriterHz} Hz: console latency added by output commit, p50 / p99", "0 (no hold)",
                p => $"{Ms(s.Median("wlat50", p))} / {Ms(s.Median("wlat99", p))}");
        }
        table.Add("migration", "migration downtime, idle domain (64 MiB in use)", "– (goal ≤ 10 ms)",
            p => $"{Ms(s.Median("mig-idle", p))} (total {Ms(s.Median("mig-idle-total", p))})");
        table.Add("migration", "migration downtime, writer dirtying 1 MiB / 10 ms", "– (goal ≤ 10 ms)",
            p => $"{Ms(s.Median("mig-writer", p))} (total {Ms(s.Median("mig-writer-total", p))})");
        Console.Write(table);
        Console.WriteLine();
        Console.WriteLine("Dirty pages per epoch as each platform's log counted them (median): " + string.Join("; ", platforms.Select(p =>
            $"{p.Name} " + string.Join(", ", DirtySets.Select(n => $"{n} → {pagesPerEpoch.Median($"{n}", p.Name):F0}")) +
            $", writer → {pagesPerEpoch.Median("writer", p.Name):F0}")) + $". The memcpy baseline: the same number of pages copied " +
            $"between two warm buffers, median of 101. Load average at the end {LoadAverage()}.");
    }

    /// <summary>What copying <paramref name="pages"/> pages costs here (ms): the floor of a pause that copies them.
    /// Median of 101 copies between two warm buffers (a short copy is rarely preempted; one 1 GiB copy on a loaded
    /// machine was).</summary>
    private static double MemcpyMs(int pages)
    {
        var from = new byte[pages * 4096];
        var to = new byte[from.Length];
        Array.Fill(from, (byte)1);
        var times = new List<double>();
        for (int i = 0; i < 101; i++)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            from.AsSpan().CopyTo(to);
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        return Bench.Median(times);
    }

    /// <summary>The 1-minute load average: on a shared machine the figures of a CPU-bound guest move with it.</summary>
    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    /// <summary>Runs the writer guest to its end (protected at <paramref name="interval"/> or not): its last line, how
    /// late each console line reached the console after its stamp (ms), and the primary's figures.</summary>
    private static (string Output, List<double> DelaysMs, RemusStats? Stats) RunWriter(DomainSpec spec, TimeSpan? interval)
    {
        var delays = new List<double>();
        var sink = new CapturingConsole
        {
            LineSeen = line =>
            {
                long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
                if (line.StartsWith("t ", StringComparison.Ordinal)) delays.Add((now - long.Parse(line[2..], CultureInfo.InvariantCulture)) / 1e6);
            },
        };
        var (_, output, stats) = CheckpointBenches.RunMaybeProtected(spec, interval, new RemusOptions().HotPageEpochs, sink);
        if (delays.Count == 0) throw new InvalidOperationException($"the writer printed no stamped line: {output}");
        return (output, delays, stats);
    }

    /// <summary>Passes per second of <paramref name="clock"/> ("seconds": wall, "cpu_seconds": CPU) from the writer's
    /// last line, "passes N seconds S cpu_seconds C".</summary>
    private static double PassesPer(string output, string clock)
    {
        var words = output.Split('\n').Last(l => l.StartsWith("passes ", StringComparison.Ordinal)).Split(' ');
        return double.Parse(words[1], CultureInfo.InvariantCulture) / double.Parse(words[Array.IndexOf(words, clock) + 1], CultureInfo.InvariantCulture);
    }

    /// <summary>ptrace when it passes its self-test; KVM when /dev/kvm is usable and KVM passes its self-test.</summary>
    private static List<Platform> Available()
    {
        var list = new List<Platform>();
        if (PlatformSelection.PtraceSelfTest.Passed) list.Add(new("ptrace", PlatformKind.Ptrace));
        if (PlatformSelection.KvmSelfTest.Passed) list.Add(new(KvmName(), PlatformKind.Kvm));
        return list;
    }

    /// <summary>"kvm_pvm", "kvm_intel", "kvm_amd" (emulated in kvm-lab), else "kvm".</summary>
    private static string KvmName()
    {
        string kind = new[] { "kvm_pvm", "kvm_intel", "kvm_amd" }.FirstOrDefault(m => Directory.Exists($"/sys/module/{m}")) ?? "kvm";
        return Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1" ? $"{kind} (kvm-lab, emulated)" : kind;
    }

    private static void PrintHeader(List<Platform> platforms, int runs, bool quick)
    {
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        Console.WriteLine($"remus-bench platforms, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, host {Environment.MachineName}: {cpu}, " +
                          $"{Environment.ProcessorCount} cores, Linux {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}; " +
                          $"median of {runs} run{(runs == 1 ? "" : "s")}{(quick ? ", --quick (shorter runs)" : "")}; load average at the start {LoadAverage()}");
        if (Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1")
            Console.WriteLine("Inside kvm-lab: stock KVM on an emulated SVM CPU under QEMU TCG; every figure, native ones included, is emulated and not representative of bare metal.");
        Console.WriteLine($"ptrace self-test: {PlatformSelection.PtraceSelfTest.Summary}; KVM self-test: {PlatformSelection.KvmSelfTest.Summary}; auto picks {PlatformSelection.Auto}");
        if (platforms.Count == 0) Console.WriteLine("no platform passed its self-test: nothing to measure");
        Console.WriteLine();
    }

    /// <summary>What a platform cannot measure here (one line each), so its cells say why instead of a figure: in
    /// kvm-lab (Linux 6.1) ptrace has no dirty-page tracking (asynchronous userfaultfd write-protect needs 6.7).</summary>
    private sealed class Failures
    {
        private readonly Dictionary<(string Group, string Platform), string> _why = [];

        public bool Ok(string group, Platform p) => !_why.ContainsKey((group, p.Name));

        public string? Why(string group, string platform) => _why.GetValueOrDefault((group, platform));

        public void Try(string group, Platform p, Action measure)
        {
            try { measure(); }
            catch (Exception e)
            {
                string why = e.Message.Split('\n')[0];
                _why[(group, p.Name)] = why;
                Console.Error.WriteLine($"{p.Name}: {group} not measured: {why}");
            }
        }
    }

    /// <summary>A Markdown table: figure | native | one column per platform.</summary>
    private sealed class Table(List<string> columns, Failures failures)
    {
        private readonly List<string[]> _rows = [];

        public void Add(string group, string figure, string native, Func<string, string> cell) =>
            _rows.Add([figure, native, .. columns.Select(c => failures.Why(group, c) is { } why ? $"– ({why})" : cell(c))]);

        public override string ToString()
        {
            var sb = new StringBuilder();
            sb.Append("| figure | native | ").Append(string.Join(" | ", columns)).Append(" |\n");
            sb.Append("| --- | --- |").Append(string.Concat(columns.Select(_ => " --- |"))).Append('\n');
            foreach (var row in _rows) sb.Append("| ").Append(string.Join(" | ", row)).Append(" |\n");
            return sb.ToString();
        }
    }
}

/// <summary>Order statistics of samples.</summary>
static class Bench
{
    /// <summary>The middle value (the upper one of an even count).</summary>
    public static double Median(IEnumerable<double> xs) => Percentile(xs, 0.5);

    public static double Percentile(IEnumerable<double> xs, double q)
    {
        var a = xs.Order().ToArray();
        return a.Length == 0 ? double.NaN : a[Math.Min(a.Length - 1, (int)(a.Length * q))];
    }
}
