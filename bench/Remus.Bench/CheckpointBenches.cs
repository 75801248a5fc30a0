using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

namespace Remus.Bench;

/// <summary>Save/restore, migration and Remus figures, measured in process over loopback TCP, with the domains on the
/// platform given (auto: REMUS_PLATFORM, else what auto picks). <see cref="PlatformsBench"/> runs the same
/// measurements once per platform.</summary>
static class CheckpointBenches
{
    private static readonly byte[] Config = "{\"name\":\"bench\"}"u8.ToArray();

    /// <summary>The backup's timeout T: the default, or 10 s inside kvm-lab (KVMLAB_GUEST=1), where the initial copy of a
    /// domain under emulation outlasted the primary's max(4T, 10 s) wait for its acknowledgement.</summary>
    private static readonly TimeSpan RemusTimeout = Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1"
        ? TimeSpan.FromSeconds(10) : new RemusOptions().Timeout;

    internal sealed class Running : IDisposable
    {
        private readonly Thread _t;
        public SandboxDomain Domain { get; }
        public int Status;
        public Running(SandboxDomain d) { Domain = d; _t = new Thread(() => Status = d.Run()) { IsBackground = true }; _t.Start(); }
        public void Join() => _t.Join();
        public void Dispose() { Domain.Kill(); _t.Join(); Domain.Dispose(); }
    }

    /// <summary>A connected pair of loopback TCP streams (no Nagle): what the stream benchmarks send over.</summary>
    internal static (NetworkStream, NetworkStream) Pair()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var c = new TcpClient();
        c.Connect((IPEndPoint)l.LocalEndpoint);
        var s = l.AcceptTcpClient();
        l.Stop();
        c.NoDelay = s.NoDelay = true;
        return (c.GetStream(), s.GetStream());
    }

    /// <summary>memcpy bandwidth of this machine (GB/s), the physical limit for any stream.</summary>
    public static double MemcpyGBps()
    {
        var a = new byte[256 << 20];
        var b = new byte[256 << 20];
        Array.Fill(a, (byte)1);
        a.AsSpan().CopyTo(b);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 4; i++) a.AsSpan().CopyTo(b);
        return 4.0 * a.Length / sw.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>
    /// What one dirty-log harvest costs (paused, as Remus harvests) with the dirtier writing PAGES pages per pass, on
    /// <paramref name="platformKind"/>, and on KVM once per dirty-log mode (REMUS_KVM_DIRTY_LOG: KVM_GET_DIRTY_LOG
    /// alone, or manual protect with KVM_CLEAR_DIRTY_LOG). Median over 40 harvests, 20 ms apart, of each run.
    /// </summary>
    public static void DirtyLog(GuestBinaries guests, int runs, PlatformKind platformKind)
    {
        string dirtier = guests.Build("dirtier.c");
        var chosen = PlatformSelection.Choose(platformKind).Kind;
        string platform = PlatformSelection.NameOf(chosen);
        string[] modes = chosen == PlatformKind.Kvm ? ["get", "manual"] : [""];
        foreach (int memory in (int[])[256, 1024])
            foreach (int pages in (int[])[0, 256, 4096])
                foreach (string mode in modes)
                {
                    Environment.SetEnvironmentVariable("REMUS_KVM_DIRTY_LOG", mode == "" ? null : mode);
                    var times = new List<double>();
                    var counts = new List<double>();
                    for (int r = 0; r < runs; r++)
                    {
                        var spec = new DomainSpec { ProgramPath = dirtier, Args = [pages.ToString(), "0", "600"], MemoryMiB = memory, Platform = chosen };
                        using var d = new Running(SandboxDomain.Create(spec, new CapturingConsole()));
                        Thread.Sleep(300);
                        d.Domain.Pause();
                        d.Domain.StartDirtyLog();
                        var bitmap = new ulong[d.Domain.DirtyBitmapWords];
                        d.Domain.HarvestDirty(bitmap);
                        d.Domain.Unpause();
                        for (int i = 0; i < 40; i++)
                        {
                            Thread.Sleep(20);
                            d.Domain.Pause();
                            Array.Clear(bitmap);
                            var sw = Stopwatch.StartNew();
                            d.Domain.HarvestDirty(bitmap);
                            times.Add(sw.Elapsed.TotalMicroseconds);
                            counts.Add(bitmap.Sum(w => (double)System.Numerics.BitOperations.PopCount(w)));
                            d.Domain.Unpause();
                        }
                    }
                    times.Sort();
                    counts.Sort();
                    Console.WriteLine($"dirty-log harvest ({platform}{(mode == "" ? "" : ", " + (mode == "get" ? "KVM_GET_DIRTY_LOG" : "manual protect + KVM_CLEAR_DIRTY_LOG"))}): " +
                                      $"{memory} MiB RAM, dirtier writing {pages} pages: p50 {times[times.Count / 2]:F0} us, " +
                                      $"p90 {times[times.Count * 9 / 10]:F0} us for {counts[counts.Count / 2]:F0} pages (median of {times.Count} harvests)");
                }
        Environment.SetEnvironmentVariable("REMUS_KVM_DIRTY_LOG", null);
    }

    public static void SaveRestore(GuestBinaries guests, int runs, PlatformKind platform)
    {
        string idle = guests.Build("idle.c");
        var spec = new DomainSpec { ProgramPath = idle, Args = ["100", "60"], MemoryMiB = 128, Platform = platform };
        var saves = new List<double>();
        var restores = new List<double>();
        long bytes = 0;
        for (int r = 0; r < runs; r++)
        {
            var file = Path.GetTempFileName();
            using (var d = new Running(SandboxDomain.Create(spec, new CapturingConsole())))
            {
                Thread.Sleep(2000); // let it fill 100 MiB
                d.Domain.Pause();
                var sw = Stopwatch.StartNew();
                using (var f = File.Create(file)) bytes = DomainSave.Save(d.Domain, f, Config).Bytes;
                saves.Add(sw.Elapsed.TotalSeconds);
            }
            var sw2 = Stopwatch.StartNew();
            using (var f = File.OpenRead(file))
            using (var restored = DomainSave.Restore(f, _ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())))
                restores.Add(sw2.Elapsed.TotalSeconds);
            File.Delete(file);
        }
        double save = Median(saves), restore = Median(restores), memcpy = MemcpyGBps();
        Console.WriteLine($"save of a 128 MiB domain (100 MiB in use): {save * 1000:F0} ms ({bytes / 1e6:F0} MB written, {bytes / save / 1e9:F2} GB/s; memcpy here {memcpy:F1} GB/s, ratio {bytes / save / 1e9 / memcpy:F3}); restore {restore * 1000:F0} ms (median of {runs})");
    }

    public static void Migration(GuestBinaries guests, int runs, PlatformKind platform)
    {
        Migrate("idle domain (64 MiB in use)", IdleMigrationSpec(guests, platform), runs, IdleWarmupMs);
        Migrate("writer dirtying 1 MiB per 10 ms", WriterMigrationSpec(guests, platform), runs, WriterWarmupMs);
    }

    public const int IdleWarmupMs = 1500, WriterWarmupMs = 500;

    /// <summary>An idle domain that filled 64 MiB of its 128 first (let it run <see cref="IdleWarmupMs"/>).</summary>
    public static DomainSpec IdleMigrationSpec(GuestBinaries guests, PlatformKind platform) =>
        new() { ProgramPath = guests.Build("idle.c"), Args = ["64", "60"], MemoryMiB = 128, Platform = platform };

    /// <summary>A domain dirtying 256 pages (1 MiB) every 10 ms.</summary>
    public static DomainSpec WriterMigrationSpec(GuestBinaries guests, PlatformKind platform) =>
        new() { ProgramPath = guests.Build("dirtier.c"), Args = ["256", "10000", "60"], MemoryMiB = 128, Platform = platform };

    /// <summary>One live migration over loopback TCP of a domain that ran <paramref name="warmupMs"/> first.</summary>
    public static MigrationResult MigrateOnce(DomainSpec spec, int warmupMs)
    {
        using var src = new Running(SandboxDomain.Create(spec, new CapturingConsole()));
        Thread.Sleep(warmupMs);
        return Migrate(src.Domain, spec);
    }

    /// <summary>One live migration over loopback TCP of the running <paramref name="source"/> (built from
    /// <paramref name="spec"/>) into a receiver in this process, whose domain is then stopped.</summary>
    public static MigrationResult Migrate(SandboxDomain source, DomainSpec spec)
    {
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            var receiver = new MigrationReceiver(b, b);
            SandboxDomain? got = null;
            var t = Task.Run(() => { got = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); receiver.ConfirmRunning(); });
            var result = new MigrationSender(source, a, a, new MigrationOptions()).Migrate(Config);
            t.Wait();
            got!.Kill();
            got.Dispose();
            return result;
        }
    }

    static void Migrate(string what, DomainSpec spec, int runs, int warmupMs)
    {
        var totals = new List<double>();
        var downs = new List<double>();
        var stream = new List<double>();
        MigrationResult? last = null;
        for (int r = 0; r < runs; r++)
        {
            last = MigrateOnce(spec, warmupMs);
            totals.Add(last.Total.TotalSeconds);
            downs.Add(last.Downtime.TotalMilliseconds);
            stream.Add(last.BytesSent / last.Total.TotalSeconds / 1e9);
        }
        Console.WriteLine($"migration, {what}: total {Median(totals) * 1000:F0} ms, downtime {Median(downs):F1} ms (goal for idle <= 10 ms), {last!.Rounds} rounds, {last.BytesSent / 1e6:F1} MB sent, stream {Median(stream):F2} GB/s vs memcpy {MemcpyGBps():F1} GB/s (median of {runs})");
    }

    /// <summary>A guest dirtying <paramref name="pages"/> pages, then sleeping 1 ms, over and over (the pause figures).</summary>
    public static DomainSpec DirtySetSpec(GuestBinaries guests, int pages, PlatformKind platform) =>
        new() { ProgramPath = guests.Build("dirtier.c"), Args = [pages.ToString(), "1000", "60"], MemoryMiB = 128, Platform = platform };

    public static void Remus(GuestBinaries guests, int runs, PlatformKind platform)
    {
        string dirtier = guests.Build("dirtier.c");
        DirtySets(guests, platform);
        RemusRest(guests, runs, platform, dirtier);
    }

    /// <summary>The checkpoint pause by dirty-set size (the first figures of `remus`; alone: `remus-bench dirtyset`).</summary>
    public static void DirtySets(GuestBinaries guests, PlatformKind platform)
    {
        double memcpy = MemcpyGBps();
        foreach (int pages in new[] { 1, 100, 1000, 10000 })
        {
            var stats = Protect(DirtySetSpec(guests, pages, platform), TimeSpan.FromMilliseconds(25), blackhole: false, compress: true, seconds: 2.5, out _);
            double copyMs = stats.PagesPerEpoch * 4096.0 / (memcpy * 1e9) * 1000;
            Console.WriteLine($"checkpoint pause, guest dirtying {pages} pages per pass: {stats.PagesPerEpoch:F0} dirty pages/epoch, pause p50 {stats.PauseP50Ms:F2} ms, p99 {stats.PauseP99Ms:F2} ms (memcpy of the same bytes {copyMs:F3} ms); {stats.BytesPerEpoch / 1024:F0} KiB/epoch, ack {stats.AckLatencyMs:F2} ms, {stats.Epochs} epochs");
        }
    }

    static void RemusRest(GuestBinaries guests, int runs, PlatformKind platform, string dirtier)
    {
        // Highest sustained checkpoint rate: interval 1 ms, a backup, small dirty set.
        {
            var spec = new DomainSpec { ProgramPath = dirtier, Args = ["10", "1000", "4"], MemoryMiB = 64, Platform = platform };
            var stats = Protect(spec, TimeSpan.FromMilliseconds(1), blackhole: false, compress: true, seconds: 2, out double elapsed);
            Console.WriteLine($"highest sustained checkpoint rate (interval 1 ms, 10 dirty pages, real backup): {stats.Epochs / elapsed:F0} checkpoints/s");
        }
        Writer(guests, runs, platform);
        string sys = guests.Build("syscalls.c");
        var sspec = new DomainSpec { ProgramPath = sys, Args = ["40000"], MemoryMiB = 32, Platform = platform };
        // Interleaved (unprotected, 40 Hz, 100 Hz, again...) so that a drift of the machine does not favour one.
        int[] rates = [0, 40, 100];
        var times = rates.ToDictionary(hz => hz, _ => new List<double>());
        for (int r = 0; r < runs; r++)
            foreach (int hz in rates)
                times[hz].Add(RunSeconds(sspec, hz == 0 ? null : TimeSpan.FromMilliseconds(1000.0 / hz)));
        double sbase = Median(times[0]);
        foreach (int hz in new[] { 40, 100 })
        {
            double s = Median(times[hz]);
            Console.WriteLine($"syscall-heavy guest (40000 getppid) protected at {hz} Hz: {s:F2} s vs {sbase:F2} s unprotected, throughput ratio {sbase / s:F2} (interleaved runs)");
        }
        // Bytes per epoch with and without compression (1 MiB dirtied per 10 ms, 40 Hz).
        var bspec = new DomainSpec { ProgramPath = dirtier, Args = ["256", "10000", "4"], MemoryMiB = 64, Platform = platform };
        var on = Protect(bspec, TimeSpan.FromMilliseconds(25), false, true, 2, out _);
        var off = Protect(bspec, TimeSpan.FromMilliseconds(25), false, false, 2, out _);
        Console.WriteLine($"bytes per epoch (writer dirtying 1 MiB per 10 ms, 40 Hz): compressed {on.BytesPerEpoch / 1024:F0} KiB (ratio {on.CompressionRatio:F1}), raw {off.BytesPerEpoch / 1024:F0} KiB");
        FailoverBench.Run(guests, runs, 1000); // end to end, through the CLI and real VMM processes
    }

    /// <summary>Throughput of a memory-writing guest (one byte in each of 256 pages per pass) protected vs unprotected.</summary>
    public static void Writer(GuestBinaries guests, int runs, PlatformKind platform)
    {
        string dirtier = guests.Build("dirtier.c");
        var wspec = new DomainSpec { ProgramPath = dirtier, Args = ["256", "0", "3"], MemoryMiB = 64, Platform = platform };
        double baseline = Median(Enumerable.Range(0, runs).Select(_ => Passes(wspec, null)).ToList());
        foreach (int hz in new[] { 40, 100 })
            foreach (int hot in new[] { new RemusOptions().HotPageEpochs, 0 })
            {
                double prot = Median(Enumerable.Range(0, runs).Select(_ => Passes(wspec, TimeSpan.FromMilliseconds(1000.0 / hz), hot)).ToList());
                string how = hot > 0 ? "hot pages compared (default)" : "every page write-protected";
                Console.WriteLine($"memory writer (1 MiB per pass) protected at {hz} Hz, {how}: {prot / 3:F0} passes/s vs {baseline / 3:F0} unprotected, ratio {prot / baseline:F2} (goal at 100 Hz >= 0.8)");
            }
    }

    /// <summary>Protects a domain of <paramref name="spec"/> with a real backup for <paramref name="seconds"/>; its figures.</summary>
    public static RemusStats Protect(DomainSpec spec, TimeSpan interval, bool blackhole, bool compress, double seconds, out double elapsed)
    {
        var console = new OutputCommitConsole(new CapturingConsole());
        using var d = new Running(SandboxDomain.Create(spec, console));
        var options = new RemusOptions { Interval = interval, Blackhole = blackhole, Compress = compress, Timeout = RemusTimeout };
        var (a, b) = Pair();
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => { try { return backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); } finally { backup.Domain?.Dispose(); } });
        using var primary = new RemusPrimary(d.Domain, console, a, a, options);
        primary.Protect(Config);
        var sw = Stopwatch.StartNew();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        var stats = primary.Stats;
        elapsed = sw.Elapsed.TotalSeconds;
        return stats;
    }

    static double Passes(DomainSpec spec, TimeSpan? interval, int hotPageEpochs = 8) =>
        double.Parse(RunMaybeProtected(spec, interval, hotPageEpochs).Output.Split(' ')[1]);

    static double RunSeconds(DomainSpec spec, TimeSpan? interval) => RunMaybeProtected(spec, interval).Seconds;

    /// <summary>Runs a guest to its end, protected with a real backup at <paramref name="interval"/> (or not); what it
    /// printed (into <paramref name="sink"/> when given) and, protected, the primary's figures at the end.</summary>
    public static (double Seconds, string Output, RemusStats? Stats) RunMaybeProtected(DomainSpec spec, TimeSpan? interval,
        int hotPageEpochs = 8, CapturingConsole? sink = null)
    {
        sink ??= new CapturingConsole();
        var console = new OutputCommitConsole(sink);
        using var d = new Running(SandboxDomain.Create(spec, console));
        var sw = Stopwatch.StartNew();
        RemusPrimary? primary = null;
        if (interval is { } i)
        {
            var (a, b) = Pair();
            var options = new RemusOptions { Interval = i, HotPageEpochs = hotPageEpochs, Timeout = RemusTimeout };
            var backup = new RemusBackup(b, b, options);
            _ = Task.Run(() => { try { backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new CapturingConsole())); } catch (Exception) { } finally { backup.Domain?.Dispose(); } });
            primary = new RemusPrimary(d.Domain, console, a, a, options);
            primary.Protect(Config);
        }
        d.Join();
        double seconds = sw.Elapsed.TotalSeconds;
        var stats = primary?.Stats;
        primary?.Dispose();
        return (seconds, sink.Text, stats);
    }

    static double Median(List<double> xs)
    {
        xs.Sort();
        return xs[xs.Count / 2];
    }
}
