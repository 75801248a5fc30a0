using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Remus.Soak.Harness;
using Remus.Tests.Net.Interop;

namespace Remus.Bench;

/// <summary>
/// Request latency through a whole domain: tests/guests/net-interop/echo_server.c in a domain (`remus create` with a
/// [network] table: its tap in a namespace of the bench's own), peer.c in that namespace sending 64-byte requests that
/// wait for their echo; unprotected, then protected (`remus protect -i 25` and `-i 10`, the backup a `remus
/// migrate-receive -r` on this host). Output commit holds each reply until the backup has the epoch that made it.
/// </summary>
static class NetBenchDomain
{
    public static void Run(GuestBinaries guests, string peer, int runs)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "remus.dll");
        if (!File.Exists(dll)) { Console.WriteLine("net domain latency: skipped (no remus.dll beside the bench)"); return; }
        string echo = guests.BuildTestGuest("net-interop/echo_server.c");
        foreach (int interval in new[] { 0, 25, 10 })
        {
            int count = interval == 0 ? 2000 : 2000 / interval;
            try
            {
                var (p50, p99) = Once(dll, echo, peer, interval, count, runs);
                string what = interval == 0 ? "unprotected" : $"protected at {1000 / interval} Hz (-i {interval}, backup on this host)";
                string goal = interval == 0 ? "" : $"; goal p50 <= {interval + 1} ms: {(p50 <= interval + 1 ? "met" : "NOT met")}";
                Console.WriteLine($"net request latency through a domain ({what}): p50 {p50:F2} ms, p99 {p99:F2} ms ({count} requests of 64 B a run{goal})");
            }
            catch (Exception e)
            {
                Console.WriteLine($"net request latency through a domain (-i {interval}): failed: {e.Message.Split('\n')[0]}");
            }
        }
    }

    private static (double P50, double P99) Once(string dll, string echo, string peerProgram, int interval, int count, int runs)
    {
        string ns = "remus-b-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        string primaryDir = Directory.CreateTempSubdirectory("remus-bench-net-").FullName;
        string backupDir = Directory.CreateTempSubdirectory("remus-bench-net-").FullName;
        Process? backup = null, peer = null;
        try
        {
            Exec("ip", "netns", "add", ns);
            Exec("ip", "-n", ns, "link", "set", "lo", "up");
            string log = Path.Combine(primaryDir, "console.log"), config = Path.Combine(primaryDir, "net.toml");
            File.WriteAllText(config, $"""
                name = "netbench"
                memory = 32
                program = "{echo}"
                args = ["7000"]
                console_log = "{log}"

                [network]
                tap = "rbd{interval}{ns[^4..]}"
                address = "10.97.0.2/24"
                host_address = "10.97.0.1/24"
                netns = "{ns}"
                """);
            Remus(dll, primaryDir, "create", config);
            WaitFor(() => File.Exists(log) && File.ReadAllText(log).Contains("listening", StringComparison.Ordinal), "the echo server listens");
            if (interval > 0)
            {
                int port = Loopback.FreePort();
                // Plain TCP on loopback (--insecure: its one warning line comes before "waiting for a"); the console_log
                // the program and the netns are the paths the stream names.
                backup = Process.Start(Info(dll, backupDir, ["migrate-receive", "-r", "--tcp-listen", $"127.0.0.1:{port}", "--insecure",
                    "--allow-path", primaryDir, "--allow-path", Path.GetDirectoryName(echo)!, "--allow-path", $"/run/netns/{ns}", "--timeout", "5000"]))!;
                var waiting = Task.Run(async () =>
                {
                    while (await backup.StandardError.ReadLineAsync() is { } line)
                        if (line.Contains("waiting for a", StringComparison.Ordinal)) return;
                });
                if (!waiting.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("the backup never said it waits");
                _ = backup.StandardError.ReadToEndAsync();
                _ = backup.StandardOutput.ReadToEndAsync();
                Remus(dll, primaryDir, "protect", "-i", interval.ToString(CultureInfo.InvariantCulture), "--timeout", "5000", "--tcp", $"127.0.0.1:{port}", "--insecure", "netbench");
            }
            var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])["netns", "exec", ns, peerProgram]) psi.ArgumentList.Add(a);
            peer = Process.Start(psi)!;
            using var p = new LinuxPeer(peer, ns);
            var id = p.Do("connect 10.97.0.2 7000")[0];
            p.Do($"rr {id} 20 64"); // warm: the connection's first round trips
            var rs = Enumerable.Range(0, runs).Select(_ => p.Do($"rr {id} {count} 64")).ToList();
            double Ms(int i) => Median(rs.Select(r => double.Parse(r[i], CultureInfo.InvariantCulture) / 1e6));
            return (Ms(0), Ms(1));
        }
        finally
        {
            TryRemus(dll, primaryDir, "destroy", "netbench");
            foreach (var proc in new[] { peer, backup })
            {
                if (proc is null) continue;
                try { if (!proc.HasExited) proc.Kill(entireProcessTree: true); proc.WaitForExit(10_000); }
                catch (InvalidOperationException) { }
            }
            TryRemus(dll, backupDir, "destroy", "netbench");
            try { Exec("ip", "netns", "del", ns); } catch (InvalidOperationException) { }
            foreach (var d in new[] { primaryDir, backupDir })
            {
                try { Directory.Delete(d, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    private static ProcessStartInfo Info(string dll, string runDir, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["REMUS_RUN_DIR"] = runDir;
        return psi;
    }

    private static string Remus(string dll, string runDir, params string[] args)
    {
        using var p = Process.Start(Info(dll, runDir, args))!;
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(); throw new TimeoutException($"remus {string.Join(' ', args)} did not end"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"remus {string.Join(' ', args)} failed ({p.ExitCode}): {se.Result}");
        return so.Result;
    }

    private static void TryRemus(string dll, string runDir, params string[] args)
    {
        try { Remus(dll, runDir, args); } catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
    }

    private static void Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {err}");
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"never: {what}");
            Thread.Sleep(20);
        }
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
