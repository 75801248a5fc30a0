using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Issue 9: live migration (`remus migrate --tcp` to a `migrate-receive --tcp-listen` in another run directory) of a
/// domain serving HTTP to real Linux clients in the test's network namespace, with keep-alive connections open and
/// requests in flight throughout. The target creates the tap again in the namespace; the clients see no failure, no
/// reset, every answer correct and the server's counter without gap or repeat.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NetworkMigrationTests(ITestOutputHelper output) : IDisposable
{
    private const string Name = "web";
    private const long Before = 300, After = 300;

    private readonly DomainTestBed _source = new();
    private readonly DomainTestBed _target = new();
    private NetNamespace? _ns;

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
        _ns?.Dispose();
    }

    public static TheoryData<PlatformKind, HttpServerKind> Rows()
    {
        var d = new TheoryData<PlatformKind, HttpServerKind>();
        foreach (var p in Platforms.Each) d.Add(p, HttpServerKind.C);
        d.Add(PlatformKind.Ptrace, HttpServerKind.Go);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Rows))]
    public void Http_clients_keep_their_connections_through_a_live_migration(PlatformKind platform, HttpServerKind server)
    {
        Platforms.Require(platform);
        NetNamespace.Require();
        HttpGuests.Require(server);
        _ns = NetNamespace.Create();
        var link = WebLink.For(_ns);
        string log = Path.Combine(_source.Work, "web.log");

        int sourceVmm = E2E.VmmPid(_source.Ok("create", link.Config(_source, Name, server, log, platform)));
        using var receiver = Receiver.Listen(_target, remus: false, out int port, "--allow-path", _source.Work, "--allow-path", $"/run/netns/{link.Netns}");
        HttpLoad? load = null;
        string Details() => $"{receiver.Describe()}\n{load?.Describe()}\n{E2E.Logs(_source)}\n{E2E.Logs(_target)}";
        E2E.WaitUntil(() => E2E.ReadText(log).Contains("listening on", StringComparison.Ordinal), "the server listens", TimeSpan.FromSeconds(60), Details);

        using (load = HttpLoad.Start(_ns, link, _source.Work))
        {
            E2E.WaitUntil(() => HttpGuests.MaxCounter(log) >= Before || load.AnyExited, $"{Before} requests answered", TimeSpan.FromSeconds(120), Details);
            long atMigrate = HttpGuests.MaxCounter(log);
            var migrate = _source.Remus(["migrate", "--tcp", $"127.0.0.1:{port}", "--insecure", Name], stdin: null, timeout: TimeSpan.FromSeconds(120));
            Assert.True(migrate.ExitCode == 0, $"remus migrate failed: {migrate}\n{Details()}");
            var downtime = Regex.Match(migrate.StdoutText, @"downtime ([0-9.]+) ms");
            DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(sourceVmm), "the source VMM exits after the migration");
            Assert.Equal(receiver.Pid, E2E.Single(_target, Name).Pid);

            E2E.WaitUntil(() => HttpGuests.MaxCounter(log) >= atMigrate + After || load.AnyExited, $"{After} more requests answered at the target",
                TimeSpan.FromSeconds(120), Details);
            var (client, curl) = load.Stop(TimeSpan.FromSeconds(120), Details);

            var quit = _ns.Exec("curl", ["-sS", "--max-time", "30", link.Url("/quit")]);
            Assert.True(quit.ExitCode == 0 && quit.StdoutText == "bye\n", $"GET /quit: {quit}\n{Details()}");
            Assert.Equal(0, receiver.WaitForExit(TimeSpan.FromSeconds(60), Details));

            long served = HttpLoadAssert.NoFailureNoGap(client, curl, E2E.ReadText(log), () => $"migrated at n={atMigrate}\n{Details()}");
            output.WriteLine($"{platform}/{server}: {served} requests, migrated at n={atMigrate} (downtime {downtime.Groups[1].Value} ms); " +
                             $"http_client {client.Brief}; curl {curl?.Brief}; the longest pause any client saw: {client["max_gap_ms"]} ms");
        }
    }
}
