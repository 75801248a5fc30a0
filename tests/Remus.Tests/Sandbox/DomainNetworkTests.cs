using Remus.Sandbox;
using Remus.Sandbox.Net;
using Remus.Sandbox.Platform.Net;
using Remus.Tests.Checkpoint;
using Remus.Tests.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A domain's network interface on the host (SandboxDomain.Network.cs): the tap is created where the [network] spec
/// says and configured, the domain's stack answers the host through it, a paused domain's stack does not run (a
/// ping gets no answer until it is unpaused), and nothing is left behind — after the domain goes, or when the
/// setup fails (a tap name in use, a missing namespace), which is one clear error line.
/// </summary>
public class DomainNetworkTests
{
    private static int _subnet = Random.Shared.Next(0, 200);

    /// <summary>A fresh 10.97.N.0/24 for one test: the host side .1, the domain .2.</summary>
    private static NetworkSpec Spec(string tap, string netns)
    {
        uint n = (uint)(Interlocked.Increment(ref _subnet) % 250);
        return new NetworkSpec
        {
            Tap = tap,
            Netns = netns,
            Address = new IPv4Address(0x0A610002 | (n << 8)),
            PrefixLength = 24,
            HostAddress = new IPv4Address(0x0A610001 | (n << 8)),
            HostPrefixLength = 24,
            Mac = MacAddress.FromName(tap),
        };
    }

    private static DomainSpec Ticker(NetworkSpec net) => new()
    {
        ProgramPath = GuestBuilder.Build("ticker"),
        Args = ["3000", "20"], // a minute of ticks: the domain runs while the test talks to it
        MemoryMiB = 16,
        Network = net,
    };

    /// <summary>
    /// ICMP echo from inside the namespace (.NET's Ping on a raw socket made on a thread in it: this host has no ping
    /// binary); true when <paramref name="count"/> replies came, each within 2 s.
    /// </summary>
    private static bool Ping(TestNetns ns, IPv4Address to, int count = 1)
    {
        var results = Remus.Sandbox.Platform.Net.NetNamespace.Run(ns.Name, () =>
        {
            using var ping = new System.Net.NetworkInformation.Ping();
            var list = new List<System.Net.NetworkInformation.IPStatus>();
            for (int i = 0; i < count; i++) list.Add(ping.Send(System.Net.IPAddress.Parse(to.ToString()), 2000).Status);
            return list;
        });
        LastPing = string.Join(", ", results);
        return results.All(r => r == System.Net.NetworkInformation.IPStatus.Success);
    }

    private static string LastPing = "";

    [SkippableFact]
    public void A_domain_answers_ping_through_its_tap_not_while_paused_and_leaves_nothing_behind()
    {
        using var ns = TestNetns.Create();
        var net = Spec("rmdom-ping0", ns.Name);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var domain = SandboxDomain.Create(Ticker(net), new RecordingConsole());
        domain.Log = log.Enqueue;
        using (var running = new RunningDomain(domain))
        {
            Assert.Contains($"inet {net.HostAddress}/24", ns.Ip("addr", "show", "dev", net.Tap));
            Assert.True(Ping(ns, net.Address, count: 3), $"the domain answers ping through its tap: {LastPing}\n{string.Join("\n", log)}");

            running.Domain.Pause();
            // The stack is frozen with the domain: the echo request waits in the tap's queue, unanswered.
            Assert.False(Ping(ns, net.Address), "a paused domain's stack answered a ping");
            running.Domain.Unpause();
            Assert.True(Ping(ns, net.Address), "the domain answers again once unpaused");
        }
        Assert.False(ns.IpOk("link", "show", net.Tap), "the tap went with the domain");
    }

    [SkippableFact]
    public void A_tap_name_in_use_fails_the_create_in_one_line_and_leaves_the_other_tap_alone()
    {
        using var ns = TestNetns.Create();
        var net = Spec("rmdom-busy0", ns.Name);
        using var holder = TapDevice.Create(net.Tap, ns.Name);
        var e = Assert.Throws<TapInUseException>(() => SandboxDomain.Create(Ticker(net), new RecordingConsole()));
        Assert.Equal("tap device rmdom-busy0 is in use", e.Message);
        Assert.True(ns.IpOk("link", "show", net.Tap));
        Assert.DoesNotContain("inet ", ns.Ip("addr", "show", "dev", net.Tap)); // not configured by the failed create
    }

    [SkippableFact]
    public void A_missing_namespace_or_bridge_fails_the_create_in_one_line()
    {
        using var ns = TestNetns.Create();
        var missing = Spec("rmdom-nons0", "remus-t-missing");
        var e = Assert.Throws<SandboxException>(() => SandboxDomain.Create(Ticker(missing), new RecordingConsole()));
        Assert.StartsWith("network namespace remus-t-missing does not exist", e.Message);

        var bridged = Spec("rmdom-nobr0", ns.Name) with { HostAddress = null, Bridge = "rmdom-br9" };
        e = Assert.Throws<SandboxException>(() => SandboxDomain.Create(Ticker(bridged), new RecordingConsole()));
        Assert.Equal($"bridge rmdom-br9 does not exist in network namespace {ns.Name}", e.Message);
        Assert.False(ns.IpOk("link", "show", bridged.Tap), "the failed create left its tap behind");
    }
}
