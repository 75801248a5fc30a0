using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;

namespace Remus.Bench;

/// <summary>
/// `remus-bench volume`: writes to a volume (docs/storage.md) natively on the same host directory, in an unprotected
/// domain, and protected with a real backup (in process, over loopback TCP; its copy in another directory) at 40 and
/// 100 Hz: fsync'ed 4 KiB writes per second and sequential write MB/s (bench/guests/volwrite.c, timed inside the
/// program), the median of the runs, interleaved so a drift of the machine favours none. Then the bytes per epoch of
/// the SQLite bank (tests/guests/sqlite/bank.c, no pause between transactions) protected at 40 Hz.
/// </summary>
static class VolumeBench
{
    private static readonly byte[] Config = "{\"name\":\"bench\"}"u8.ToArray();

    public static void Run(GuestBinaries guests, int runs, PlatformKind platform)
    {
        string volwrite = guests.Build("volwrite.c");
        // Under the temp folder: set TMPDIR to a directory on a real disk where /tmp is a tmpfs (fsync costs nothing there).
        string root = Directory.CreateTempSubdirectory("remus-bench-volume-").FullName;
        try
        {
            string primary = Path.Combine(root, "primary"), backup = Path.Combine(root, "backup");
            Directory.CreateDirectory(primary);
            Console.WriteLine($"volume writes ({PlatformSelection.Choose(platform).Name}, directory {root}; median of {runs}):");
            Console.WriteLine($"{"",-26} {"fsync'ed 4 KiB writes/s",24} {"sequential MB/s",16}");
            string[] modes = ["native", "unprotected", "40 Hz", "100 Hz"];
            var fsyncs = modes.ToDictionary(m => m, _ => new List<double>());
            var seqs = modes.ToDictionary(m => m, _ => new List<double>());
            for (int r = 0; r < runs; r++)
                foreach (var mode in modes)
                {
                    fsyncs[mode].Add(Measure.Field(Once(mode, volwrite, ["fsync", "/data/f", "400"], primary, backup, platform), "fsync_writes_per_s"));
                    seqs[mode].Add(Measure.Field(Once(mode, volwrite, ["seq", "/data/f", "128"], primary, backup, platform), "seq_mb_per_s"));
                }
            foreach (var mode in modes)
                Console.WriteLine($"{mode,-26} {Median(fsyncs[mode]),24:F0} {Median(seqs[mode]),16:F0}");

            string bank = BuildBank();
            var bankSpec = Spec(bank, ["wal", "/data/bank.db", "1000000", "0", "200"], primary, platform);
            foreach (string mode in new[] { "wal", "delete" })
            {
                foreach (var f in Directory.GetFiles(primary)) File.Delete(f);
                var spec = bankSpec with { Args = [mode, "/data/bank.db", "1000000", "0", "200"] };
                var console = new CapturingConsole();
                var stats = ProtectFor(spec, WithHostPath(spec, backup), TimeSpan.FromMilliseconds(25), TimeSpan.FromSeconds(4), console, out double seconds);
                long commits = console.Text.Split('\n').LongCount(l => l.StartsWith("committed ", StringComparison.Ordinal));
                double perCommit = commits > 0 ? stats.BytesPerEpoch * stats.Epochs / commits : 0;
                Console.WriteLine($"SQLite bank ({mode} journal, synchronous=FULL, 200-byte rows, no pause) protected at 40 Hz: " +
                                  $"{stats.BytesPerEpoch / 1024:F1} KiB/epoch, {perCommit / 1024:F1} KiB per commit (compression ratio {stats.CompressionRatio:F1}), pause p50 {stats.PauseP50Ms:F2} ms " +
                                  $"p99 {stats.PauseP99Ms:F2} ms, {commits / seconds:F0} commits/s released, {stats.Epochs} epochs");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string Once(string mode, string program, string[] args, string primary, string backup, PlatformKind platform)
    {
        if (mode == "native")
        {
            var nativeArgs = args.Select(a => a.Replace("/data", primary, StringComparison.Ordinal)).ToArray();
            var r = Measure.Native(program, nativeArgs);
            if (r.ExitCode != 0) throw new InvalidOperationException($"volwrite natively: {r.Stderr}");
            return r.Stdout;
        }
        var spec = Spec(program, args, primary, platform);
        var console = new CapturingConsole();
        if (mode == "unprotected")
        {
            using var d = SandboxDomain.Create(spec, console);
            int status = d.Run();
            if (status != 0) throw new InvalidOperationException($"volwrite in a domain exited {status}: {console.Text}");
            return console.Text;
        }
        int hz = int.Parse(mode.Split(' ')[0]);
        RunProtected(spec, WithHostPath(spec, backup), TimeSpan.FromMilliseconds(1000.0 / hz), console);
        return console.Text;
    }

    private static DomainSpec Spec(string program, string[] args, string volume, PlatformKind platform) => new()
    {
        ProgramPath = program,
        Args = args,
        MemoryMiB = 64,
        Platform = platform,
        Volumes = [new VolumeSpec { HostPath = volume, GuestPath = "/data" }],
    };

    private static DomainSpec WithHostPath(DomainSpec spec, string hostPath) =>
        spec with { Volumes = [.. spec.Volumes.Select(v => v with { HostPath = hostPath })] };

    /// <summary>Runs <paramref name="spec"/> to its end protected at <paramref name="interval"/> by an in-process backup whose domain uses <paramref name="backupSpec"/>.</summary>
    private static RemusStats RunProtected(DomainSpec spec, DomainSpec backupSpec, TimeSpan interval, CapturingConsole sink) =>
        ProtectFor(spec, backupSpec, interval, null, sink, out _);

    /// <summary>Protects a domain for <paramref name="duration"/> (then kills it), or to its end when null; the primary's figures.</summary>
    private static RemusStats ProtectFor(DomainSpec spec, DomainSpec backupSpec, TimeSpan interval, TimeSpan? duration, CapturingConsole sink, out double seconds)
    {
        var console = new OutputCommitConsole(sink);
        using var domain = SandboxDomain.Create(spec, console);
        var run = new Thread(() => domain.Run()) { IsBackground = true };
        run.Start();
        var (a, b) = CheckpointBenches.Pair();
        var options = new RemusOptions { Interval = interval };
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() =>
        {
            try { backup.Watch(_ => SandboxDomain.CreateIncoming(backupSpec, new CapturingConsole())); }
            catch (Exception) { }
            finally { backup.Domain?.Dispose(); }
        });
        var sw = Stopwatch.StartNew();
        RemusStats stats;
        using (var primary = new RemusPrimary(domain, console, a, a, options))
        {
            primary.Protect(Config);
            if (duration is { } d)
            {
                Thread.Sleep(d);
                stats = primary.Stats;
                seconds = sw.Elapsed.TotalSeconds;
                domain.Kill();
            }
            else
            {
                run.Join();
                stats = primary.Stats;
                seconds = sw.Elapsed.TotalSeconds;
            }
            run.Join();
        }
        a.Dispose();
        watch.Wait(TimeSpan.FromSeconds(30));
        return stats;
    }

    /// <summary>tests/guests/sqlite/bank.c linked against Debian's static libsqlite3.</summary>
    private static string BuildBank()
    {
        string root = AppContext.BaseDirectory;
        for (var d = new DirectoryInfo(root); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Remus.sln"))) { root = d.FullName; break; }
        string output = Path.Combine(Path.GetTempPath(), $"remus-bench-bank-{Environment.ProcessId}");
        var r = Measure.Native("gcc", "-static", "-O2", "-o", output, Path.Combine(root, "tests", "guests", "sqlite", "bank.c"), "-lsqlite3", "-lm", "-lpthread");
        if (r.ExitCode != 0) throw new InvalidOperationException($"gcc bank.c -lsqlite3 failed (libsqlite3-dev?): {r.Stderr}");
        return output;
    }

    private static double Median(List<double> xs)
    {
        xs.Sort();
        return xs[xs.Count / 2];
    }
}
