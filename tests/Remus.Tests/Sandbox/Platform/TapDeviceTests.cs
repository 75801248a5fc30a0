using Remus.Sandbox;
using Remus.Sandbox.Net;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Net;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// The tap device, network-namespace and interface-ioctl layer (Platform/Net), against the real kernel, inside a
/// namespace each test creates and deletes: the tap appears where it was asked for, takes an address and comes up
/// (as `ip` sees it), carries frames both ways, and goes away when closed; a name in use and a missing namespace
/// are one clear error line each and leave nothing behind.
/// </summary>
public class TapDeviceTests
{
    [SkippableFact]
    public void Tap_in_a_namespace_comes_up_with_an_address_and_is_gone_after_dispose()
    {
        using var ns = TestNetns.Create();
        using (var tap = TapDevice.Create("rmt-up0", ns.Name))
        using (var ctl = InterfaceControl.Open(ns.Name))
        {
            Assert.NotNull(ctl.IndexOf("rmt-up0"));
            ctl.SetAddress("rmt-up0", new IPv4Address(0x0A4D0001), 24);
            ctl.SetUp("rmt-up0");
            var addr = ns.Ip("addr", "show", "dev", "rmt-up0");
            Assert.Contains("inet 10.77.0.1/24", addr);
            Assert.Contains("UP", addr.Split('\n')[0]);
            // Not in our own namespace.
            Assert.False(TestNetns.IpOk("link", "show", "rmt-up0"));
        }
        Assert.False(ns.IpOk("link", "show", "rmt-up0"), "the kernel deletes a non-persistent tap when its descriptor closes");
    }

    [SkippableFact]
    public void A_name_in_use_is_one_clear_error_and_the_first_tap_survives()
    {
        using var ns = TestNetns.Create();
        using var first = TapDevice.Create("rmt-busy0", ns.Name);
        var e = Assert.Throws<TapInUseException>(() => TapDevice.Create("rmt-busy0", ns.Name));
        Assert.Equal("tap device rmt-busy0 is in use", e.Message);
        // Any interface holds its name, not only a tap.
        var lo = Assert.Throws<TapInUseException>(() => TapDevice.Create("lo", ns.Name));
        Assert.Equal("tap device lo is in use", lo.Message);
        Assert.True(ns.IpOk("link", "show", "rmt-busy0"));
    }

    [SkippableFact]
    public void Retrying_creation_waits_for_the_old_holder_to_close()
    {
        using var ns = TestNetns.Create();
        var old = TapDevice.Create("rmt-again0", ns.Name);
        var closer = Task.Run(() =>
        {
            Thread.Sleep(200);
            old.Dispose();
        });
        using var again = TapDevice.CreateRetrying("rmt-again0", ns.Name, TestTimeouts.Scaled(TimeSpan.FromSeconds(30)));
        closer.Wait();
        Assert.True(ns.IpOk("link", "show", "rmt-again0"));
    }

    [SkippableFact]
    public void A_missing_namespace_is_one_clear_error()
    {
        Skip.If(!TestNetns.Available(out var why), why);
        var e = Assert.Throws<SandboxException>(() => TapDevice.Create("rmt-none0", "remus-t-does-not-exist"));
        Assert.StartsWith("network namespace remus-t-does-not-exist does not exist", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Throws<SandboxException>(() => InterfaceControl.Open("remus-t-does-not-exist"));
    }

    [Fact]
    public void Bad_names_are_refused_before_the_kernel_sees_them()
    {
        Assert.Contains("bad tap device name", Assert.Throws<SandboxException>(() => TapDevice.Create("a-name-far-too-long")).Message);
        Assert.Throws<SandboxException>(() => TapDevice.Create("a/b"));
        Assert.Throws<SandboxException>(() => TapDevice.Create(""));
        Assert.True(TapDevice.IsValidName("rmweb0"));
        Assert.False(TapDevice.IsValidName("a b"));
        Assert.False(TapDevice.IsValidName("a:1"));
    }

    [SkippableFact]
    public void Frames_go_both_ways_the_host_answers_an_arp_request()
    {
        using var ns = TestNetns.Create();
        using var tap = TapDevice.Create("rmt-arp0", ns.Name);
        using (var ctl = InterfaceControl.Open(ns.Name))
        {
            ctl.SetAddress("rmt-arp0", new IPv4Address(0x0A4E0001), 24); // 10.78.0.1
            ctl.SetUp("rmt-arp0");
        }
        var mine = new MacAddress(0x02_52_4D_AA_BB_CC);
        var myIp = new IPv4Address(0x0A4E0002);
        var request = new byte[42];
        MacAddress.Broadcast.Write(request);
        mine.Write(request.AsSpan(6));
        request[12] = 0x08; request[13] = 0x06;                 // ARP
        request[14] = 0; request[15] = 1; request[16] = 8; request[17] = 0; request[18] = 6; request[19] = 4;
        request[20] = 0; request[21] = 1;                       // request
        mine.Write(request.AsSpan(22));
        myIp.Write(request.AsSpan(28));
        new IPv4Address(0x0A4E0001).Write(request.AsSpan(38));
        var buffer = new byte[2048];
        var deadline = DateTime.UtcNow + TestTimeouts.Scaled(TimeSpan.FromSeconds(20));
        bool answered = false;
        while (!answered && DateTime.UtcNow < deadline)
        {
            Assert.True(tap.WriteFrame(request));
            int n;
            while (!answered && (n = tap.ReadFrame(buffer, 500)) > 0)
            {
                // Other frames (IPv6 router solicitations, ...) may come first.
                answered = n >= 42 && buffer[12] == 0x08 && buffer[13] == 0x06 && buffer[21] == 2 &&
                           MacAddress.Read(buffer) == mine && IPv4Address.Read(buffer.AsSpan(38)) == myIp;
            }
        }
        Assert.True(answered, "the host side answered our ARP request through the tap");
    }

    [SkippableFact]
    public void A_waiting_read_ends_on_interrupt_and_on_cancellation()
    {
        using var ns = TestNetns.Create();
        using var tap = TapDevice.Create("rmt-intr0", ns.Name);
        var buffer = new byte[2048];
        using (var cts = new CancellationTokenSource())
        {
            var read = Task.Run(() => tap.ReadFrame(buffer, -1, cts.Token));
            cts.Cancel();
            Assert.True(read.Wait(TestTimeouts.Scaled(TimeSpan.FromSeconds(30))));
            Assert.Equal(0, read.Result);
        }
        var blocked = Task.Run(() => tap.ReadFrame(buffer));
        tap.Interrupt();
        Assert.True(blocked.Wait(TestTimeouts.Scaled(TimeSpan.FromSeconds(30))));
        Assert.Equal(0, blocked.Result);
        Assert.Equal(0, tap.ReadFrame(buffer)); // sticky
    }

    [SkippableFact]
    public void A_tap_joins_an_existing_bridge()
    {
        using var ns = TestNetns.Create();
        ns.Ip("link", "add", "rmt-br0", "type", "bridge");
        using var tap = TapDevice.Create("rmt-port0", ns.Name);
        using var ctl = InterfaceControl.Open(ns.Name);
        ctl.AttachToBridge("rmt-br0", "rmt-port0");
        Assert.Contains("master rmt-br0", ns.Ip("link", "show", "rmt-port0"));
        Assert.Equal("bridge rmt-none0 does not exist in network namespace " + ns.Name,
            Assert.Throws<SandboxException>(() => ctl.AttachToBridge("rmt-none0", "rmt-port0")).Message);
    }
}
