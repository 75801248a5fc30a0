using System.Diagnostics;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using static Remus.Bench.CheckpointBenches;

namespace Remus.Bench;

/// <summary>
/// Remus at scale (issue 14): for domains of 256 MiB, 1 GiB, 4 GiB and 16 GiB (three quarters filled by bigmem.c with
/// mixed random and compressible pages; 64 MiB at 16 GiB), on each platform this machine has: the initial
/// synchronisation (time, GB/s, CPU seconds per GB of this process), the guest-visible pause (from the epoch loop's pause
/// to the guest's resume, timed per epoch through <see cref="RemusOptions.OnStep"/>) at 100 Hz with the guest writing one
/// page per 10 ms ("idle") and 1 000 pages per 10 ms, and a live migration of the idle domain (total, downtime, GB/s).
/// Memcpy bandwidth is printed beside the stream figures; the machine's RAM in the header. Everything over loopback TCP
/// in this process (a real backup / receiver domain each time).
/// Usage: remus-bench scale [--sizes 256,1024,4096,16384] [--platform auto|kvm|ptrace] [--runs N] [--seconds S]
///   [--sync-only [--uncompressed]] [--migration-only] [--threads]
/// (--runs: runs of the sync and the migration per size, default 1; --seconds: how long each pause series runs, default 6;
/// --sync-only: the initial synchronisation alone; --uncompressed: a raw stream; --threads: CPU per thread of each sync;
/// --migration-only: the migrations alone, median downtime of the runs and each run's).
/// </summary>
static class ScaleBench
{
    private static readonly byte[] Config = "{\"name\":\"scale\"}"u8.ToArray();
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(10);
    private const int SkipEpochs = 20; // the first epochs after the sync carry what the last round left
    private static bool s_compress = true; // --uncompressed: the stream's raw rate (-u)
    private static bool s_threads;         // --threads: CPU of each thread of this process during each sync

    public static void Run(GuestBinaries guests, string[] args, PlatformKind platform)
    {
        string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        int[] sizes = Option("--sizes") is { } s ? s.Split(',').Select(int.Parse).ToArray() : [256, 1024, 4096, 16384];
        int runs = Option("--runs") is { } r ? int.Parse(r) : 1;
        double seconds = Option("--seconds") is { } sec ? double.Parse(sec, System.Globalization.CultureInfo.InvariantCulture) : 6;
        s_compress = !args.Contains("--uncompressed");
        s_threads = args.Contains("--threads");
        if (args.Contains("--sync-only"))
        {
            SyncOnly(guests.Build("bigmem.c"), sizes, runs, platform);
            return;
        }
        bool migrationOnly = args.Contains("--migration-only");
        string bigmem = guests.Build("bigmem.c");
        double touch = FirstTouchGBps(), memcpy = MemcpyGBps();
        var kinds = platform != PlatformKind.Auto ? [platform]
            : PlatformSelection.KvmSelfTest.Passed ? new[] { PlatformKind.Ptrace, PlatformKind.Kvm } : [PlatformKind.Ptrace];
        Console.WriteLine($"remus-bench scale: {Environment.ProcessorCount} cores, {HostRamGiB():F1} GiB RAM, memcpy {memcpy:F1} GB/s, " +
                          $"first touch of fresh memory {touch:F2} GB/s (one thread; a receiver writes every page into fresh memory); " +
                          $"pauses at {1000 / Interval.TotalMilliseconds:F0} Hz for {seconds:F0} s each (first {SkipEpochs} epochs left out), sync and migration median of {runs}");
        Console.WriteLine($"| platform | domain (filled) | initial sync | sync GB/s (x memcpy) | CPU s/GB | idle pause p50 / p99 | 1000 pages: pause p50 / p99 | migration total | downtime | migration GB/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var kind in kinds)
            foreach (int mib in sizes)
            {
                int fill = mib >= 16384 ? 64 : mib * 3 / 4;
                string row = $"| {PlatformSelection.NameOf(kind)} | {Size(mib)} ({Size(fill)}) |";
                try
                {
                    if (migrationOnly)
                    {
                        var ms = Enumerable.Range(0, runs).Select(_ => Migrate(Spec(bigmem, mib, fill, 1, kind))).OrderBy(m => m.Downtime).ToList();
                        var md = ms[ms.Count / 2];
                        Console.WriteLine(row + $" – | – | – | – | – | {md.Total.TotalSeconds:F2} s ({md.Rounds} rounds) | {md.Downtime.TotalMilliseconds:F1} ms" +
                                          $" (all: {string.Join(", ", ms.Select(x => x.Downtime.TotalMilliseconds.ToString("F1")))}) | {md.BytesSent / md.Total.TotalSeconds / 1e9:F2} |");
                        continue;
                    }
                    var syncs = new List<Sync>();
                    Pauses idle = default, busy = default;
                    for (int i = 0; i < runs; i++)
                    {
                        var (sync, pauses) = Protect(Spec(bigmem, mib, fill, 1, kind), seconds);
                        syncs.Add(sync);
                        if (i == 0) idle = pauses;
                    }
                    busy = Protect(Spec(bigmem, mib, fill, 1000, kind), seconds).Pauses;
                    var sync1 = syncs.OrderBy(x => x.Seconds).ElementAt(syncs.Count / 2);
                    var migrations = Enumerable.Range(0, runs).Select(_ => Migrate(Spec(bigmem, mib, fill, 1, kind))).OrderBy(m => m.Total).ToList();
                    var m = migrations[migrations.Count / 2];
                    double syncGBps = sync1.Bytes / sync1.Seconds / 1e9, migGBps = m.BytesSent / m.Total.TotalSeconds / 1e9;
                    row += $" {sync1.Seconds:F2} s | {syncGBps:F2} ({syncGBps / memcpy:F3}) | {sync1.CpuSeconds / (sync1.Bytes / 1e9):F2} |" +
                           $" {idle.P50:F2} / {idle.P99:F2} ms ({idle.Pages:F0} pages) | {busy.P50:F2} / {busy.P99:F2} ms ({busy.Pages:F0} pages) |" +
                           $" {m.Total.TotalSeconds:F2} s ({m.Rounds} rounds) | {m.Downtime.TotalMilliseconds:F1} ms | {migGBps:F2} |";
                }
                catch (Exception e)
                {
                    row += $" failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} |";
                }
                Console.WriteLine(row);
            }
    }

    /// <summary>
    /// How fast one thread can write fresh memory (a page fault and a zeroed page each time): the ceiling of a receiver
    /// that fills a new domain's RAM, whatever the stream does. On our nested machines a first touch costs several
    /// microseconds, far more than the copy.
    /// </summary>
    private static double FirstTouchGBps()
    {
        const ulong bytes = 256 << 20;
        using var ram = new GuestMemory(bytes); // a domain's RAM: a fresh memfd, mapped here as the VMM maps it
        var sw = Stopwatch.StartNew();
        for (ulong pfn = 0; pfn < bytes / GuestMemory.PageSize; pfn++) ram.Page(pfn)[0] = 1;
        return bytes / sw.Elapsed.TotalSeconds / 1e9;
    }

    private static string Size(int mib) => mib >= 1024 ? $"{mib / 1024} GiB" : $"{mib} MiB";

    private static double HostRamGiB() =>
        File.ReadLines("/proc/meminfo").Where(l => l.StartsWith("MemTotal:")).Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1048576.0).FirstOrDefault();

    private static DomainSpec Spec(string bigmem, int mib, int fill, int touch, PlatformKind kind) =>
        new() { ProgramPath = bigmem, Args = [fill.ToString(), touch.ToString(), "10", "3600"], MemoryMiB = mib, Platform = kind };

    private readonly record struct Sync(double Seconds, long Bytes, double CpuSeconds);
    private readonly record struct Pauses(double P50, double P99, double Pages);

    /// <summary>Starts the domain, waits until it filled its memory, then runs <paramref name="spec"/>'s guest.</summary>
    private static Running Start(DomainSpec spec, out OutputCommitConsole oc)
    {
        var filled = new ManualResetEventSlim();
        var console = new CapturingConsole { LineSeen = l => { if (l.StartsWith("filled")) filled.Set(); } };
        oc = new OutputCommitConsole(console);
        var d = new Running(SandboxDomain.Create(spec, oc));
        if (!filled.Wait(TimeSpan.FromMinutes(5)))
        {
            d.Dispose();
            throw new TimeoutException("the guest did not fill its memory within 5 minutes");
        }
        return d;
    }

    /// <summary>Protects a filled domain with a real backup: the initial sync, then the per-epoch pause for <paramref name="seconds"/>.</summary>
    private static (Sync Sync, Pauses Pauses) Protect(DomainSpec spec, double seconds)
    {
        var pauses = new double[(int)(seconds * 1000 / Interval.TotalMilliseconds) + 1000];
        int count = 0;
        long began = 0;
        var options = new RemusOptions
        {
            Interval = Interval, Compress = s_compress,
            OnStep = (step, _) =>
            {
                if (step == RemusStep.BeforeSuspend) began = Stopwatch.GetTimestamp();
                else if (step == RemusStep.Resumed && began != 0 && count < pauses.Length)
                    pauses[count++] = Stopwatch.GetElapsedTime(began).TotalMilliseconds;
            },
        };
        using var d = Start(spec, out var console);
        var (a, b) = Pair();
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => { try { return backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); } finally { backup.Domain?.Dispose(); } });
        using var primary = new RemusPrimary(d.Domain, console, a, a, options);
        long bytes = 0;
        primary.Progress += p => bytes = p.BytesSent;
        var threads0 = Threads();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        primary.Protect(Config);
        var sync = new Sync(sw.Elapsed.TotalSeconds, bytes, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
        if (s_threads) PrintThreads(threads0);
        if (seconds <= 0)
        {
            a.Dispose();
            b.Dispose();
            try { watch.Wait(TimeSpan.FromSeconds(30)); } catch (AggregateException) { /* the backup saw the channel close */ }
            return (sync, default);
        }
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        var stats = primary.Stats;
        int n = Volatile.Read(ref count);
        if (n <= SkipEpochs)
            throw new InvalidOperationException($"only {n} epochs in {seconds:F0} s (protected: {primary.IsProtected}; {primary.EndReason ?? "no end reason"})");
        var taken = pauses.AsSpan(Math.Min(SkipEpochs, n), n - Math.Min(SkipEpochs, n)).ToArray();
        Array.Sort(taken);
        var result = taken.Length == 0 ? new Pauses(double.NaN, double.NaN, 0)
            : new Pauses(taken[taken.Length / 2], taken[Math.Min(taken.Length - 1, (int)(taken.Length * 0.99))], stats.PagesPerEpoch);
        a.Dispose();
        b.Dispose();
        try { watch.Wait(TimeSpan.FromSeconds(30)); } catch (AggregateException) { /* the backup saw the channel close */ }
        return (sync, result);
    }

    /// <summary>
    /// <c>--sync-only</c>: each run protects a freshly filled domain and ends once the initial synchronisation is
    /// over: its time, guest GB/s, wire GB/s and CPU seconds (this process) per guest GB. With <c>--uncompressed</c>
    /// the stream is raw (<c>-u</c>), for the ratio of the compressed rate to the raw one. For working on the stream.
    /// </summary>
    private static void SyncOnly(string bigmem, int[] sizes, int runs, PlatformKind platform)
    {
        var kinds = platform != PlatformKind.Auto ? [platform]
            : PlatformSelection.KvmSelfTest.Passed ? new[] { PlatformKind.Ptrace, PlatformKind.Kvm } : [PlatformKind.Ptrace];
        Console.WriteLine($"remus-bench scale --sync-only ({(s_compress ? "compressed" : "raw")}): {Environment.ProcessorCount} cores, memcpy {MemcpyGBps():F1} GB/s, " +
                          $"first touch {FirstTouchGBps():F2} GB/s; median of {runs}");
        Console.WriteLine("| platform | domain (filled) | stream | sync | guest GB/s | wire GB/s | CPU s per guest GB |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var kind in kinds)
            foreach (int mib in sizes)
            {
                int fill = mib >= 16384 ? 64 : mib * 3 / 4;
                double guestGB = fill / 1024.0 * (1L << 30) / 1e9;
                var syncs = Enumerable.Range(0, runs).Select(_ => Protect(Spec(bigmem, mib, fill, 1, kind), 0).Sync).OrderBy(x => x.Seconds).ToList();
                var s = syncs[syncs.Count / 2];
                Console.WriteLine($"| {PlatformSelection.NameOf(kind)} | {Size(mib)} ({Size(fill)}) | {(s_compress ? "compressed" : "raw")} | {s.Seconds:F2} s |" +
                                  $" {guestGB / s.Seconds:F2} | {s.Bytes / s.Seconds / 1e9:F2} | {s.CpuSeconds / guestGB:F2} |");
            }
    }

    /// <summary>User and system CPU seconds of every thread of this process, by thread id (/proc/self/task).</summary>
    private static Dictionary<string, (string Name, double User, double Sys)> Threads()
    {
        var d = new Dictionary<string, (string, double, double)>();
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int close = stat.LastIndexOf(')');
                var f = stat[(close + 2)..].Split(' ');
                d[Path.GetFileName(dir)] = (stat[(stat.IndexOf('(') + 1)..close], long.Parse(f[11]) / 100.0, long.Parse(f[12]) / 100.0);
            }
            catch (IOException) { }
        }
        return d;
    }

    /// <summary>To stderr: what each thread used since <paramref name="before"/> (at least 30 ms).</summary>
    private static void PrintThreads(Dictionary<string, (string Name, double User, double Sys)> before)
    {
        foreach (var (tid, t) in Threads())
        {
            var b = before.GetValueOrDefault(tid);
            double u = t.User - b.User, k = t.Sys - b.Sys;
            if (u + k >= 0.03) Console.Error.WriteLine($"  {tid,-7} {t.Name,-16} user {u:F2} sys {k:F2}");
        }
    }

    private static MigrationResult Migrate(DomainSpec spec)
    {
        using var src = Start(spec, out _);
        return CheckpointBenches.Migrate(src.Domain, spec);
    }
}
