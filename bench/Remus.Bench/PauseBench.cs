using System.Diagnostics;
using System.Numerics;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

namespace Remus.Bench;

/// <summary>
/// `remus-bench pause [--platform kvm|ptrace] [--sizes 256,1024,...]`: what a checkpoint's pause is made of as the
/// domain grows (issue 14). For each domain size (touched ~75%; 16 GiB with 64 MiB touched) a guest touching one page
/// every 10 ms, and, paused, 100 times (the first ~60 harvests on ptrace still scan regions not yet found cold): the harvest of the dirty log (<see cref="SandboxDomain.HarvestDirty(DirtyPageSet)"/>),
/// the dirty pages listed, the vCPU and kernel state captured, with the bytes allocated on this thread; then the same
/// domain protected (blackhole, 40 Hz) for <c>--seconds</c> (default 28: the p50/p99 Remus reports are over its last
/// 1 000 epochs, so the first 3 s, while regions go cold, are left out), and the bytes the whole process allocated per epoch.
/// </summary>
static class PauseBench
{
    public static void Run(GuestBinaries guests, PlatformKind platform, IReadOnlyList<int> sizes, int seconds)
    {
        string guest = guests.Build("pausetouch.c");
        Console.WriteLine($"pause parts (median / p99 over 100 pauses, guest touching 1 page per 10 ms; {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}):");
        foreach (int mib in sizes)
        {
            int fill = mib >= 16384 ? 64 : mib * 3 / 4;
            var spec = new DomainSpec { ProgramPath = guest, Args = [fill.ToString(), "1", "3600"], MemoryMiB = mib, Platform = platform };
            Parts(spec, mib, fill);
            Protected(spec, mib, fill, seconds);
        }
    }

    static void WaitFilled(CapturingConsole console)
    {
        var until = Stopwatch.StartNew();
        while (!console.Text.Contains("filled"))
        {
            if (until.Elapsed > TimeSpan.FromMinutes(5)) throw new TimeoutException("the guest did not fill its memory within 5 minutes");
            Thread.Sleep(20);
        }
        Thread.Sleep(200);
    }

    static void Parts(DomainSpec spec, int mib, int fill)
    {
        var console = new CapturingConsole();
        var d = SandboxDomain.Create(spec, console);
        d.Log = m => Console.WriteLine($"  (domain: {m})");
        var t = new Thread(() => d.Run()) { IsBackground = true };
        t.Start();
        try
        {
            WaitFilled(console);
            var set = new DirtyPageSet(d.DirtyBitmapWords);
            var pfns = new ulong[1 << 16];
            d.Pause();
            d.StartDirtyLog();
            d.HarvestDirty(set);
            set.Clear();
            d.Unpause();
            var harvest = new List<double>(); var list = new List<double>(); var vcpu = new List<double>(); var kernel = new List<double>();
            var whole = new List<double>(); var together = new List<double>(); var pages = new List<double>(); long allocated = 0;
            int count = int.TryParse(Environment.GetEnvironmentVariable("PAUSES"), out int c) ? c : 100;
            for (int i = 0; i < count; i++)
            {
                Thread.Sleep(10);
                d.Pause();
                long a0 = GC.GetAllocatedBytesForCurrentThread();
                long t0 = Stopwatch.GetTimestamp();
                d.HarvestDirty(set);
                long t1 = Stopwatch.GetTimestamp();
                int n = set.CopyTo(pfns, SandboxDomain.FirstPage, d.PageCount);
                set.Clear();
                long t2 = Stopwatch.GetTimestamp();
                var states = d.CaptureVcpuStates();
                long t3 = Stopwatch.GetTimestamp();
                var k = d.CaptureKernelState();
                long t4 = Stopwatch.GetTimestamp();
                var both = d.CaptureStates();
                long t5 = Stopwatch.GetTimestamp();
                allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
                d.Unpause();
                if (i < count - 100) continue; // the figures are of the last 100 (PAUSES: how many in all)
                together.Add(Ms(t5 - t4)); harvest.Add(Ms(t1 - t0)); list.Add(Ms(t2 - t1)); vcpu.Add(Ms(t3 - t2)); kernel.Add(Ms(t4 - t3)); whole.Add(Ms(t4 - t0)); pages.Add(n);
                GC.KeepAlive(states); GC.KeepAlive(k); GC.KeepAlive(both);
            }
            Console.WriteLine($"  {Size(mib)} ({fill} MiB touched), {spec.Platform}: harvest {P(harvest)}, list pages {P(list)}, vCPU state {P(vcpu)}, kernel state {P(kernel)} (both in one visit {P(together)}); " +
                $"sum {P(whole)} ms; {Median(pages):F0} pages/pause; {allocated / 100} B allocated per pause");
        }
        finally
        {
            d.Kill();
            t.Join();
            d.Dispose();
        }
    }

    static void Protected(DomainSpec spec, int mib, int fill, int seconds)
    {
        var inner = new CapturingConsole();
        var console = new OutputCommitConsole(inner);
        var d = SandboxDomain.Create(spec, console);
        d.Log = m => Console.WriteLine($"  (domain: {m})");
        var t = new Thread(() => d.Run()) { IsBackground = true };
        t.Start();
        try
        {
            WaitFilled(inner);
            var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(25), Blackhole = true, Compress = false };
            using var primary = new RemusPrimary(d, console, System.IO.Stream.Null, null, options);
            var sw = Stopwatch.StartNew();
            primary.Protect("{\"name\":\"bench\"}"u8.ToArray());
            double sync = sw.Elapsed.TotalSeconds;
            Thread.Sleep(TimeSpan.FromSeconds(1));
            long e0 = primary.Stats.Epochs, a0 = GC.GetTotalAllocatedBytes(precise: true);
            Thread.Sleep(TimeSpan.FromSeconds(Math.Max(1, seconds - 1)));
            long perEpoch = (GC.GetTotalAllocatedBytes(precise: true) - a0) / Math.Max(1, primary.Stats.Epochs - e0);
            var s = primary.Stats;
            Console.WriteLine($"  {Size(mib)} ({fill} MiB touched), {spec.Platform}, protected (blackhole, 40 Hz, {seconds} s; figures of the last {Math.Min(1000, s.Epochs)} epochs): pause p50 {s.PauseP50Ms:F3} ms, p99 {s.PauseP99Ms:F3} ms, {s.PagesPerEpoch:F1} pages/epoch, {s.Epochs} epochs; {perEpoch} B allocated per epoch (whole process: the loop, the vCPU thread, the guest's system calls); initial sync {sync:F1} s");
        }
        finally
        {
            d.Kill();
            t.Join();
            d.Dispose();
        }
    }

    static string Size(int mib) => mib >= 1024 ? $"{mib / 1024} GiB" : $"{mib} MiB";
    static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
    static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
    static double P99(List<double> v) { var s = v.Order().ToList(); return s[Math.Min(s.Count - 1, (int)(s.Count * 0.99))]; }
    static string P(List<double> v) => $"{Median(v):F3}/{P99(v):F3}";
}
