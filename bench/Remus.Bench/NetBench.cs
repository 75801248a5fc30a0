using System.Diagnostics;
using System.Globalization;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Tests.Net.Interop;

namespace Remus.Bench;

/// <summary>
/// The domain's TCP/IP stack (issue 9) beside the host kernel's own TCP, in the same run: the stack on a tap in a
/// namespace of its own with the harness the interop tests use (pump and timer threads under one lock, no domain),
/// its Linux peer tests/guests/net-interop/peer.c inside that namespace; the kernel's figure between two namespaces
/// joined by a veth pair, peer.c at both ends. Figures (median of --runs N): bulk TCP throughput into and out of
/// the stack, small request/response latency p50/p99, connections per second, and the stack's Save with 1000 idle
/// connections vs none. Everything runs inside namespaces this bench makes (remus-b-*) and deletes.
/// </summary>
static class NetBench
{
    private const long StackBulk = 64L << 20, KernelBulk = 256L << 20;
    private const int RrCount = 2000, RrSize = 64, CpsCount = 500, IdleConnections = 1000;

    public static void Run(GuestBinaries guests, int runs)
    {
        if (Environment.UserName != "root" || !File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip"))
        {
            Console.WriteLine("net: skipped (needs root and the `ip` command to make network namespaces)");
            return;
        }
        string peer = guests.BuildTestGuest("net-interop/peer.c");
        Console.WriteLine($"net: the stack (in-process harness, tap in a netns) vs the host kernel (veth between two netns); median of {runs}");
        using var ka = BenchNs.Create();
        using var kb = BenchNs.Create();
        ka.Ip("link", "add", "rbv0", "type", "veth", "peer", "name", "rbv1", "netns", kb.Name);
        ka.Ip("addr", "add", "10.98.0.1/24", "dev", "rbv0");
        ka.Ip("link", "set", "rbv0", "up");
        kb.Ip("addr", "add", "10.98.0.2/24", "dev", "rbv1");
        kb.Ip("link", "set", "rbv1", "up");
        using var ks = ka.Peer(peer);
        using var kc = kb.Peer(peer);

        using var sn = BenchNs.Create();
        using var h = new StackHarness(sn.Name, "rbt0");
        using var sp = sn.Peer(peer);

        // Bulk, into the stack and out of it; the kernel's figure is one direction on the veth (symmetric).
        var l = h.Socket();
        l.Bind(8080);
        l.Listen();
        var sid = sp.Do($"connect {StackHarness.StackIp} 8080")[0];
        var a = l.Accept();
        var kl = ks.Do("listen 8080")[0];
        var kcid = kc.Do("connect 10.98.0.1 8080")[0];
        var ksid = ks.Do($"accept {kl}")[0];

        double kernel = Median(runs, () => Gbits(KernelBulk, Timed(() =>
        {
            ks.Post($"sink {ksid} {KernelBulk}");
            kc.Do($"source {kcid} {KernelBulk}");
            LinuxPeer.Ok("sink", ks.ReadReply("sink"));
        })));
        double into = Median(runs, () => Gbits(StackBulk, Timed(() =>
        {
            sp.Post($"source {sid} {StackBulk}");
            Discard(a, StackBulk);
            LinuxPeer.Ok("source", sp.ReadReply("source"));
        })));
        double outOf = Median(runs, () => Gbits(StackBulk, Timed(() =>
        {
            sp.Post($"sink {sid} {StackBulk}");
            SendZeros(a, StackBulk);
            LinuxPeer.Ok("sink", sp.ReadReply("sink"));
        })));
        Console.WriteLine($"net bulk TCP into the stack: {into:F2} Gbit/s, out of the stack: {outOf:F2} Gbit/s; kernel on a veth: {kernel:F2} Gbit/s " +
                          $"(stack/kernel {into / kernel:F2}, {outOf / kernel:F2}; {StackBulk >> 20} MiB and {KernelBulk >> 20} MiB a run)");

        // Request latency: RrCount requests of RrSize bytes, each waiting for its echo (TCP_NODELAY on the client).
        using (var echo = new StackEchoServer(h, 8081))
        {
            var rid = sp.Do($"connect {StackHarness.StackIp} 8081")[0];
            var kl2 = ks.Do("listen 8081")[0];
            var kr = kc.Do("connect 10.98.0.1 8081")[0];
            var ke = ks.Do($"accept {kl2}")[0];
            ks.Post($"echo {ke}");
            var stack = Enumerable.Range(0, runs).Select(_ => sp.Do($"rr {rid} {RrCount} {RrSize}")).ToList();
            var kern = Enumerable.Range(0, runs).Select(_ => kc.Do($"rr {kr} {RrCount} {RrSize}")).ToList();
            double Us(List<string[]> xs, int i) => Median(xs.Select(x => double.Parse(x[i], CultureInfo.InvariantCulture) / 1000));
            kc.Do($"close {kr}"); // ends the kernel side's echo
            LinuxPeer.Ok("echo", ks.ReadReply("echo"));
            Console.WriteLine($"net request latency ({RrSize} B echo, unprotected): stack p50 {Us(stack, 0):F0} us, p99 {Us(stack, 1):F0} us; " +
                              $"kernel p50 {Us(kern, 0):F0} us, p99 {Us(kern, 1):F0} us");
        }

        // Connections per second: connect, the server closes at once (it keeps the TIME_WAIT), the client reads EOF and closes.
        using (new StackEchoServer(h, 8082, closeAtOnce: true))
        {
            var kl3 = ks.Do($"listen 8082 1024")[0];
            double stack = Median(runs, () => CpsCount / Seconds(sp.Do($"cps {StackHarness.StackIp} 8082 {CpsCount}")[0]));
            double kern = Median(runs, () =>
            {
                ks.Post($"acceptclose {kl3} {CpsCount}");
                double s = Seconds(kc.Do($"cps 10.98.0.1 8082 {CpsCount}")[0]);
                LinuxPeer.Ok("acceptclose", ks.ReadReply("acceptclose"));
                return CpsCount / s;
            });
            Console.WriteLine($"net connections per second (sequential connect + close): stack {stack:F0}/s, kernel {kern:F0}/s");
        }

        // The stack's Save (what a checkpoint adds for the network) with no connections, then with 1000 idle ones.
        using (var fresh = BenchNs.Create())
        using (var h2 = new StackHarness(fresh.Name, "rbt1"))
        using (var p2 = fresh.Peer(peer))
        using (var holder = new StackEchoServer(h2, 8083, backlog: 1024))
        {
            var none = SaveCost(h2);
            p2.Do($"hold {StackHarness.StackIp} 8083 {IdleConnections}");
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (holder.Accepted < IdleConnections && DateTime.UtcNow < deadline) Thread.Sleep(10);
            var idle = SaveCost(h2);
            Console.WriteLine($"net stack Save: {none.Us:F1} us ({none.Bytes} B) with a listener and no connections, " +
                              $"{idle.Us:F1} us ({idle.Bytes} B) with {holder.Accepted} idle connections: +{idle.Us - none.Us:F1} us (goal < 200 us more)");
        }
        h.ThrowIfThreadFailed();

        // The same requests through a whole domain, unprotected and protected at 40 Hz and 100 Hz.
        NetBenchDomain.Run(guests, peer, runs);
    }

    private static (double Us, long Bytes) SaveCost(StackHarness h)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        var xs = new List<double>();
        for (int i = 0; i < 201; i++)
        {
            ms.SetLength(0);
            lock (h.Lock)
            {
                long t0 = Stopwatch.GetTimestamp();
                h.Stack.Save(w);
                w.Flush();
                xs.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
        }
        return (Median(xs), ms.Length);
    }

    private static void Discard(StackSocket a, long n)
    {
        var buf = new byte[1 << 16];
        for (long got = 0; got < n;)
        {
            int want = (int)Math.Min(buf.Length, n - got);
            long r = a.Call(s => s.Receive(buf.AsSpan(0, want), 0, out _, out _), PollEvents.In | PollEvents.RdHup);
            if (r <= 0) throw new InvalidOperationException($"stack receive: {r} after {got} bytes");
            got += r;
        }
    }

    private static void SendZeros(StackSocket a, long n)
    {
        var buf = new byte[1 << 16];
        for (long sent = 0; sent < n;)
        {
            int len = (int)Math.Min(buf.Length, n - sent);
            long r = a.Call(s => s.Send(buf.AsSpan(0, len), 0, null), PollEvents.Out);
            if (r <= 0) throw new InvalidOperationException($"stack send: {r} after {sent} bytes");
            sent += r;
        }
    }

    private static double Timed(Action f)
    {
        long t0 = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private static double Gbits(long bytes, double seconds) => bytes * 8 / seconds / 1e9;
    private static double Seconds(string ns) => double.Parse(ns, CultureInfo.InvariantCulture) / 1e9;
    private static double Median(int runs, Func<double> f) => Median(Enumerable.Range(0, runs).Select(_ => f()));

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>A network namespace of the bench's own (remus-b-XXXXXXXX), deleted with its processes in Dispose.</summary>
    private sealed class BenchNs : IDisposable
    {
        private readonly List<Process> started = [];

        private BenchNs(string name) => Name = name;

        public string Name { get; }

        public static BenchNs Create()
        {
            var ns = new BenchNs("remus-b-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)));
            Run("ip", "netns", "add", ns.Name);
            ns.Ip("link", "set", "lo", "up");
            return ns;
        }

        public void Ip(params string[] args) => Run("ip", ["-n", Name, .. args]);

        public LinuxPeer Peer(string program)
        {
            var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])["netns", "exec", Name, program]) psi.ArgumentList.Add(a);
            var p = Process.Start(psi)!;
            started.Add(p);
            return new LinuxPeer(p, Name);
        }

        private static void Run(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {err}");
        }

        public void Dispose()
        {
            foreach (var p in started)
            {
                try
                {
                    if (!p.HasExited) p.Kill(entireProcessTree: true);
                    p.WaitForExit(5000);
                }
                catch (InvalidOperationException) { }
            }
            try { Run("ip", "netns", "del", Name); }
            catch (InvalidOperationException) { }
        }
    }
}
