using System.Diagnostics;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Issue 9's headline: an HTTP server in a protected domain (the C one, tests/guests/net/http_server.c, and Go's
/// net/http, tests/guests/go/httpd.go) with real Linux clients in the test's own network namespace — http_client's
/// keep-alive connections opened before the failure and fresh ones, and curl in a loop — making requests all the
/// time; the primary's VMM is killed with SIGKILL under `remus protect` and the backup (on the same host, another run
/// directory) takes over, creating the tap again in the namespace; then that domain is protected again, under load,
/// and its VMM killed in turn. No request fails, no connection is reset, every answer is correct, and the server's
/// counter the clients saw has no gap and no repeat (nothing released was rolled back). The real CLI throughout:
/// remus create, migrate-receive -r, protect.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NetworkFailoverTests(ITestOutputHelper output) : IDisposable
{
    private const string Name = "web";
    // Requests answered before the kill, and after the backup took over, before the clients are stopped.
    private const long Before = 300, After = 300;

    // Failovers in a chain: the domain protected again on its backup, under load, and killed there too. The second
    // round needs a backup's kernel to load every checkpoint into the same stack cleanly (the previous checkpoint's
    // socket files are detached before the stack is replaced, SocketsSnapshot.cs): without that, the domain that took
    // over could not be checkpointed again, and stale FIN/RST frames left at takeover reset live clients.
    private const int Failovers = 2;

    // hosts[0] runs the domain first; hosts[i + 1] is the backup that takes over at the i-th kill.
    private readonly DomainTestBed[] _hosts = [.. Enumerable.Range(0, Failovers + 1).Select(_ => new DomainTestBed())];
    private NetNamespace? _ns;

    public void Dispose()
    {
        foreach (var h in _hosts) h.Dispose();
        _ns?.Dispose();
    }

    public static TheoryData<PlatformKind, HttpServerKind> Rows()
    {
        var d = new TheoryData<PlatformKind, HttpServerKind>();
        foreach (var p in Platforms.Each)
        {
            d.Add(p, HttpServerKind.C);
            d.Add(p, HttpServerKind.Go);
        }
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Rows))]
    public void Http_clients_see_no_failure_no_reset_and_no_counter_gap_when_the_primary_VMM_is_killed(PlatformKind platform, HttpServerKind server)
    {
        Platforms.Require(platform);
        NetNamespace.Require();
        HttpGuests.Require(server);
        _ns = NetNamespace.Create();
        var link = WebLink.For(_ns);
        string log = Path.Combine(_hosts[0].Work, "web.log"); // every VMM writes here: the combined console

        int vmm = E2E.VmmPid(_hosts[0].Ok("create", link.Config(_hosts[0], Name, server, log, platform)));
        var receivers = new List<Receiver>();
        HttpLoad? load = null;
        string Details() => string.Join("\n", receivers.Select(r => r.Describe())) + $"\n{load?.Describe()}\n--- console (tail) ---\n{Tail(log)}\n" +
                            string.Join("\n", _hosts.Select(E2E.Logs));
        E2E.WaitUntil(() => E2E.ReadText(log).Contains("listening on", StringComparison.Ordinal), "the server listens", TimeSpan.FromSeconds(60), Details);
        try
        {
            var kills = new List<string>();
            for (int round = 0; round < Failovers; round++)
            {
                // The domain runs on hosts[round]; its backup is hosts[round + 1], protecting it under load from the second round on.
                var receiver = Receiver.Listen(_hosts[round + 1], remus: true, out int port, "--allow-path", _hosts[0].Work, "--allow-path", $"/run/netns/{link.Netns}");
                receivers.Add(receiver);
                var protect = _hosts[round].Remus(["protect", "-i", "50", "--tcp", $"127.0.0.1:{port}", "--insecure", Name], stdin: null, timeout: TimeSpan.FromSeconds(60));
                Assert.True(protect.ExitCode == 0, $"remus protect (round {round + 1}) failed: {protect}\n{Details()}");
                load ??= HttpLoad.Start(_ns, link, _hosts[0].Work);
                long target = HttpGuests.MaxCounter(log) + Before;
                E2E.WaitUntil(() => HttpGuests.MaxCounter(log) >= target || load.AnyExited, $"{Before} more requests answered under protection (round {round + 1})",
                    TimeSpan.FromSeconds(120), Details);
                var stats = E2E.Single(_hosts[round], Name).Remus;
                KillJustAfterARelease(log, vmm);
                long atKill = HttpGuests.MaxCounter(log);
                Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the VMM {vmm} survived SIGKILL");
                receiver.WaitForStderr($"Remus failover for domain {Name}", TimeSpan.FromSeconds(60));
                vmm = receiver.Pid; // the receiver became the domain's VMM
                kills.Add($"kill {round + 1} at n={atKill} (epochs {stats?.Epochs}, pause p50 {stats?.PauseP50Ms:F1} ms p99 {stats?.PauseP99Ms:F1} ms, " +
                          $"frames released {stats?.Net?.FramesReleased} held p50 {stats?.Net?.LatencyP50Ms:F1} ms p99 {stats?.Net?.LatencyP99Ms:F1} ms)");
            }
            long last = HttpGuests.MaxCounter(log);
            E2E.WaitUntil(() => HttpGuests.MaxCounter(log) >= last + After || load!.AnyExited, $"{After} more requests answered after the last failover",
                TimeSpan.FromSeconds(120), Details);
            var (client, curl) = load!.Stop(TimeSpan.FromSeconds(120), Details);

            var quit = _ns.Exec("curl", ["-sS", "--max-time", "30", link.Url("/quit")]);
            Assert.True(quit.ExitCode == 0 && quit.StdoutText == "bye\n", $"GET /quit: {quit}\n{Details()}");
            int status = receivers[^1].WaitForExit(TimeSpan.FromSeconds(60), Details);
            Assert.True(status == 0, $"the last backup's domain ended with status {status}\n{Details()}");

            long served = HttpLoadAssert.NoFailureNoGap(client, curl, E2E.ReadText(log), () => $"{string.Join("; ", kills)}\n{Details()}", replays: Failovers);
            output.WriteLine($"{platform}/{server}: {served} requests; {string.Join("; ", kills)}; http_client {client.Brief}; curl {curl?.Brief}; " +
                             $"the longest pause any client saw: {client["max_gap_ms"]} ms");
        }
        finally
        {
            load?.Dispose();
            foreach (var r in receivers) r.Dispose();
        }
    }

    /// <summary>
    /// SIGKILLs the VMM <paramref name="vmm"/> (this pid only) just after its console grew: output is released when the
    /// backup acknowledges an epoch, so the domain is then running the next one, with answers computed since its last
    /// checkpoint — the moment output commit matters. (A kill landing while the domain is paused for a checkpoint the
    /// backup then has whole finds nothing released since it: without output commit such a run would pass.)
    /// </summary>
    private static void KillJustAfterARelease(string log, int vmm)
    {
        long size = new FileInfo(log).Length;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (new FileInfo(log).Length == size && DateTime.UtcNow < deadline) Thread.Sleep(1);
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
    }

    private static string Tail(string path) => string.Join('\n', E2E.ReadText(path).Split('\n').TakeLast(15));
}
