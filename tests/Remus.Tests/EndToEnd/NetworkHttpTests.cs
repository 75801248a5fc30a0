using System.Globalization;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The HTTP servers of the network tests under the same load as the failover and migration tests, without any
/// failure: natively in the test's namespace (the reference: the guests and the checks themselves are right), and in
/// an unprotected domain created with the real CLI (the domain's network serves real Linux clients: keep-alive
/// connections, fresh ones, curl in a loop, /big bodies). Every request answered correctly, counters 1..M once each.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NetworkHttpTests(ITestOutputHelper output) : IDisposable
{
    private const long Requests = 500;

    private readonly DomainTestBed _host = new();
    private NetNamespace? _ns;

    public void Dispose()
    {
        _host.Dispose();
        _ns?.Dispose();
    }

    public static TheoryData<HttpServerKind> Servers() => new() { HttpServerKind.C, HttpServerKind.CMusl, HttpServerKind.Go };

    public static TheoryData<PlatformKind, HttpServerKind> DomainRows()
    {
        var d = new TheoryData<PlatformKind, HttpServerKind>();
        foreach (var p in Platforms.Each)
        {
            d.Add(p, HttpServerKind.C);
            d.Add(p, HttpServerKind.Go);
        }
        d.Add(PlatformKind.Ptrace, HttpServerKind.CMusl);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Servers))]
    public void Natively_in_the_namespace_every_request_is_answered_once_and_correctly(HttpServerKind server)
    {
        NetNamespace.Require();
        HttpGuests.Require(server);
        _ns = NetNamespace.Create();
        var link = WebLink.For(_ns);
        // A veth pair inside the namespace stands for the tap: the server's end has the domain's address.
        string a = _ns.LinkName("s"), b = _ns.LinkName("c");
        _ns.Ip("link", "add", a, "type", "veth", "peer", "name", b);
        _ns.Up(a, link.DomainAddress + "/24");
        _ns.Up(b, link.HostAddress + "/24");
        var serverProcess = new CollectedProcess(_ns.Start(HttpGuests.Server(server), HttpGuests.Port.ToString(CultureInfo.InvariantCulture)));
        string Details() => $"--- server stdout (tail) ---\n{string.Join('\n', serverProcess.Stdout.Split('\n').TakeLast(10))}\n--- server stderr ---\n{serverProcess.Stderr}";
        E2E.WaitUntil(() => serverProcess.Stdout.Contains("listening on", StringComparison.Ordinal) || serverProcess.Process.HasExited,
            "the native server listens", TimeSpan.FromSeconds(30), Details);

        using var load = HttpLoad.Start(_ns, link, _host.Work);
        E2E.WaitUntil(() => MaxCounter(serverProcess.Stdout) >= Requests || load.AnyExited, $"{Requests} requests answered", TimeSpan.FromSeconds(120),
            () => load.Describe() + "\n" + Details());
        var (client, curl) = load.Stop(TimeSpan.FromSeconds(120), Details);
        var quit = _ns.Exec("curl", ["-sS", "--max-time", "30", link.Url("/quit")]);
        Assert.True(quit.ExitCode == 0 && quit.StdoutText == "bye\n", $"GET /quit: {quit}\n{Details()}");
        Assert.True(serverProcess.Process.WaitForExit(30_000), "the native server did not exit after /quit");
        serverProcess.Process.WaitForExit();
        Assert.Equal(0, serverProcess.Process.ExitCode);
        Assert.EndsWith("done\n", serverProcess.Stdout);

        long served = HttpLoadAssert.NoFailureNoGap(client, curl, serverProcess.Stdout, Details);
        output.WriteLine($"native {server}: {served} requests; http_client {client.Brief}; curl {curl?.Brief}");
    }

    [SkippableTheory]
    [MemberData(nameof(DomainRows))]
    public void In_a_domain_every_request_is_answered_once_and_correctly(PlatformKind platform, HttpServerKind server)
    {
        Platforms.Require(platform);
        NetNamespace.Require();
        HttpGuests.Require(server);
        _ns = NetNamespace.Create();
        var link = WebLink.For(_ns);
        string log = Path.Combine(_host.Work, "web.log");
        int vmm = E2E.VmmPid(_host.Ok("create", link.Config(_host, "web", server, log, platform)));
        HttpLoad? load = null;
        string Details() => $"{load?.Describe()}\n--- console (tail) ---\n{string.Join('\n', E2E.ReadText(log).Split('\n').TakeLast(10))}\n{E2E.Logs(_host)}";
        E2E.WaitUntil(() => E2E.ReadText(log).Contains("listening on", StringComparison.Ordinal), "the server listens", TimeSpan.FromSeconds(60), Details);

        using (load = HttpLoad.Start(_ns, link, _host.Work))
        {
            E2E.WaitUntil(() => HttpGuests.MaxCounter(log) >= Requests || load.AnyExited, $"{Requests} requests answered", TimeSpan.FromSeconds(120), Details);
            var (client, curl) = load.Stop(TimeSpan.FromSeconds(120), Details);
            var quit = _ns.Exec("curl", ["-sS", "--max-time", "30", link.Url("/quit")]);
            Assert.True(quit.ExitCode == 0 && quit.StdoutText == "bye\n", $"GET /quit: {quit}\n{Details()}");
            E2E.WaitForTheEnd(log, vmm, Details);

            long served = HttpLoadAssert.NoFailureNoGap(client, curl, E2E.ReadText(log), Details);
            output.WriteLine($"{platform}/{server}: {served} requests; http_client {client.Brief}; curl {curl?.Brief}");
        }
    }

    private static long MaxCounter(string stdout) => HttpGuests.ConsoleCounters(stdout).DefaultIfEmpty(0).Max();
}
