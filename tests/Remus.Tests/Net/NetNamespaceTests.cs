using Remus.Tests.Net.Interop;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Net;

/// <summary>The test network namespace fixture: made with loopback up, always deleted, stale ones swept; its veth pairs carry Linux TCP.</summary>
public sealed class NetNamespaceTests
{
    [SkippableFact]
    public void Create_HasLoopbackUp_AndDisposeDeletesIt_KillingItsProcesses()
    {
        NetNamespace.Require();
        string path;
        System.Diagnostics.Process started;
        using (var ns = NetNamespace.Create())
        {
            path = ns.Path;
            Assert.StartsWith("/run/netns/remus-t-", path);
            Assert.True(File.Exists(path), $"{path} exists");
            Assert.Contains("state UNKNOWN", ns.Ip("link", "show", "lo")); // lo is up: UNKNOWN (no carrier notion), DOWN when not
            Assert.Contains("LOOPBACK,UP", ns.Ip("link", "show", "lo"));
            started = ns.Start("sleep", "600");
        }
        Assert.False(File.Exists(path), $"{path} deleted by Dispose");
        Assert.True(started.HasExited, "the process started inside was killed");
    }

    [SkippableFact]
    public void Veth_BetweenTwoNamespaces_CarriesLinuxTcp_WithTheGeneratedStream()
    {
        NetNamespace.Require();
        using var a = NetNamespace.Create();
        using var b = NetNamespace.Create();
        a.AddVeth("10.77.0.1/24", b, "10.77.0.2/24");
        using var server = InteropRig.StartPeer(a);
        using var client = InteropRig.StartPeer(b);
        var listener = server.Do("listen 7000")[0];
        var conn = client.Do("connect 10.77.0.1 7000")[0];
        var accepted = server.Do($"accept {listener}");
        Assert.StartsWith("10.77.0.2:", accepted[1]);
        const long Size = 3_000_001; // not a multiple of 8: the stream's last partial block
        server.Post($"recv {accepted[0]} {Size}");
        Assert.Equal(Size.ToString(), client.Do($"send {conn} {Size} 42")[0]);
        var got = LinuxPeer.Ok("recv", server.ReadReply("recv"));
        Assert.Equal(Size.ToString(), got[0]);
        Assert.Equal(GeneratedStream.Sha256(42, Size), got[1]);
    }

    [SkippableFact]
    public void RunInside_MakesDotNetSocketsInTheNamespace()
    {
        NetNamespace.Require();
        using var a = NetNamespace.Create();
        using var b = NetNamespace.Create();
        a.AddVeth("10.79.0.1/24", b, "10.79.0.2/24");
        using var server = InteropRig.StartPeer(a);
        var listener = server.Do("listen 7001")[0];
        // Made inside b: reaches a over the veth, which the test process's own namespace could not.
        using var client = b.RunInside(() => new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp));
        client.Connect(System.Net.IPAddress.Parse("10.79.0.1"), 7001);
        var accepted = server.Do($"accept {listener}");
        Assert.Equal($"10.79.0.2:{((System.Net.IPEndPoint)client.LocalEndPoint!).Port}", accepted[1]);
    }

    [SkippableFact]
    public void Veth_ToTheTestProcessNamespace_IsDeletedWithTheNamespace()
    {
        NetNamespace.Require();
        string outside;
        using (var ns = NetNamespace.Create())
        {
            outside = ns.AddVeth("10.78.0.1/24").Other;
            Assert.True(Directory.Exists($"/sys/class/net/{outside}"), $"{outside} exists outside the namespace");
        }
        Assert.False(Directory.Exists($"/sys/class/net/{outside}"), $"{outside} deleted with the namespace");
    }

    [SkippableFact]
    public void SweepStale_DeletesOldRemusTestNamespaces_ButNotFreshOnes()
    {
        NetNamespace.Require();
        using var fresh = NetNamespace.Create();
        using var stale = NetNamespace.Create();
        NetNamespace.SweepStale(TimeSpan.FromHours(1), fresh.Name); // made just now: left alone
        NetNamespace.SweepStale(TimeSpan.Zero, stale.Name);          // any age counts as stale here
        Assert.False(File.Exists(stale.Path), "the stale namespace was swept");
        Assert.True(File.Exists(fresh.Path), "the fresh one was left");
    }
}
