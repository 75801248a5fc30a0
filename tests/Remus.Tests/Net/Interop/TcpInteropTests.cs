using Remus.Sandbox.Kernel.Readiness;
using Xunit;
using static Remus.Tests.Net.Interop.StackSocket;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// The stack's TCP against the host's Linux TCP, through a tap in a test namespace: handshakes both ways, bulk both
/// ways with SHA-256 checks (also under loss, reordering and duplicates), zero window, RST, half close, many
/// concurrent connections, keepalive on a dead peer, TIME_WAIT reuse.
/// </summary>
[Collection(InteropCollection.Name)]
public sealed class TcpInteropTests
{
    private const ushort Port = 8080;
    private const string Stack = StackHarness.StackIp;

    [SkippableFact]
    public void ActiveOpen_StackConnectsToLinux_AndDataFlowsBothWays()
    {
        using var w = InteropRig.Start();
        var listener = w.Peer.Do("listen 9000")[0];
        var s = w.H.Socket();
        Assert.Equal(0, s.Connect(StackHarness.HostIp, 9000));
        var accepted = w.Peer.Do($"accept {listener}");
        Assert.Equal(s.Local.ToString(), accepted[1]);
        Assert.Equal(StackHarness.StackIp, s.Local.Address.ToString());

        w.Peer.Post($"recv {accepted[0]} 5000");
        Assert.Equal(5000, s.SendGenerated(3, 5000));
        Assert.Equal(GeneratedStream.Sha256(3, 5000), LinuxPeer.Ok("recv", w.Peer.ReadReply("recv"))[1]);
        w.Peer.Do($"send {accepted[0]} 7000 4");
        var got = s.ReceiveAll(7000);
        Assert.Equal((7000L, GeneratedStream.Sha256(4, 7000)), (got.Count, got.Sha256));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void PassiveOpen_LinuxConnectsToStack()
    {
        using var w = InteropRig.Start();
        var l = w.H.Socket();
        l.Bind(Port);
        l.Listen();
        var c = w.Peer.Do($"connect {Stack} {Port}");
        var a = l.Accept();
        Assert.Equal($"{StackHarness.HostIp}:{c[1]}", a.Locked(x => x.RemoteEndpoint).ToString());
        Assert.Equal($"{Stack}:{Port}", a.Local.ToString());
        w.Peer.Post($"recv {c[0]} 1000");
        a.SendGenerated(5, 1000);
        Assert.Equal(GeneratedStream.Sha256(5, 1000), LinuxPeer.Ok("recv", w.Peer.ReadReply("recv"))[1]);
        w.H.ThrowIfThreadFailed();
    }

    public static TheoryData<string, int> BulkCases() => new()
    {
        { "clean", 64 << 20 },
        { "lossy", 16 << 20 },
    };

    [SkippableTheory]
    [MemberData(nameof(BulkCases))]
    public void Bulk_LinuxToStack_ArrivesWhole(string wire, int size)
    {
        using var w = InteropRig.Start(wire == "lossy" ? new LossProfile(0.04, 0.03, 0.01) : null, seed: 11);
        var (a, id) = Connected(w);
        w.Peer.Post($"send {id} {size} 21");
        var got = a.ReceiveAll(size);
        var reply = LinuxPeer.Ok("send", w.Peer.ReadReply("send"));
        Assert.Equal(size.ToString(), reply[0]);
        Assert.Equal((size, GeneratedStream.Sha256(21, size)), (got.Count, got.Sha256));
        AssertLossWasReal(w, wire);
    }

    [SkippableTheory]
    [MemberData(nameof(BulkCases))]
    public void Bulk_StackToLinux_ArrivesWhole(string wire, int size)
    {
        using var w = InteropRig.Start(wire == "lossy" ? new LossProfile(0.04, 0.03, 0.01) : null, seed: 12);
        var (a, id) = Connected(w);
        w.Peer.Post($"recvall {id}");
        Assert.Equal(size, a.SendGenerated(22, size));
        Assert.Equal(0, a.Shutdown(1));
        var reply = LinuxPeer.Ok("recvall", w.Peer.ReadReply("recvall"));
        Assert.Equal((size.ToString(), GeneratedStream.Sha256(22, size)), (reply[0], reply[1]));
        AssertLossWasReal(w, wire);
    }

    [SkippableFact]
    public void Bulk_BothWaysAtOnce_UnderLoss()
    {
        using var w = InteropRig.Start(new LossProfile(0.03, 0.03, 0.01), seed: 13);
        var (a, id) = Connected(w);
        const int Size = 16 << 20;
        // One Linux socket, both directions: the peer sends while the stack sends and reads; the peer reads after.
        w.Peer.Post($"send {id} {Size} 31");
        var sender = new Thread(() => a.SendGenerated(32, Size)) { IsBackground = true };
        sender.Start();
        var got = a.ReceiveAll(Size);
        LinuxPeer.Ok("send", w.Peer.ReadReply("send"));
        w.Peer.Post($"recv {id} {Size}");
        Assert.True(sender.Join(StackSocket.Guard), "the stack's send finished (hang guard)");
        var back = LinuxPeer.Ok("recv", w.Peer.ReadReply("recv"));
        Assert.Equal((Size, GeneratedStream.Sha256(31, Size)), (got.Count, got.Sha256));
        Assert.Equal(GeneratedStream.Sha256(32, Size), back[1]);
        AssertLossWasReal(w, "lossy");
    }

    [SkippableFact]
    public void ZeroWindow_LinuxSenderStalls_ThenResumesWhenTheStackReads()
    {
        using var w = InteropRig.Start();
        int zeroWindows = 0, segmentsAfterZero = 0;
        w.H.Outbound.Observe = f =>
        {
            if (Frames.Tcp(f) is { SourcePort: Port, Window: 0 } t && (t.Flags & Frames.Rst) == 0) zeroWindows++;
        };
        w.H.Inbound.Observe = f =>
        {
            if (zeroWindows > 0 && Frames.Tcp(f) is { DestinationPort: Port }) segmentsAfterZero++;
        };
        var (a, id) = Connected(w);
        const int Size = 24 << 20; // more than the stack's receive buffer and Linux's send buffer together
        w.Peer.Post($"send {id} {Size} 41");
        // The stack reads nothing: it must close its window, and Linux must keep probing it.
        Until(w, () => w.H.Locked(_ => zeroWindows > 0 && segmentsAfterZero >= 3), "a zero window advertised and Linux probing it");
        int buffered = a.Locked(s => s.ReadableBytes);
        Assert.InRange(buffered, 1, Size - 1);
        var got = a.ReceiveAll(Size);
        LinuxPeer.Ok("send", w.Peer.ReadReply("send"));
        Assert.Equal((Size, GeneratedStream.Sha256(41, Size)), (got.Count, got.Sha256));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void Rst_FromLinux_ResetsTheStackSocket()
    {
        using var w = InteropRig.Start();
        var (a, id) = Connected(w);
        w.Peer.Do($"rst {id}");
        var buf = new byte[100];
        Assert.Equal(-ECONNRESET, a.ReceiveOnce(buf));
        Assert.Equal(-EPIPE, a.Locked(s => s.Send(new byte[10], 0, null)));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void Rst_FromStack_WhenClosedWithUnreadData()
    {
        using var w = InteropRig.Start();
        var (a, id) = Connected(w);
        w.Peer.Do($"send {id} 1000 1");
        a.WaitFor(PollEvents.In);
        a.Close(); // unread data: RST, not FIN (RFC 2525 2.17)
        var r = w.Peer.Try($"wait {id}");
        Assert.StartsWith("err ECONNRESET", r);
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void Rst_FromStack_OnLingerZeroClose()
    {
        using var w = InteropRig.Start();
        var (a, id) = Connected(w);
        a.SetLinger(true, 0);
        a.Close();
        Assert.StartsWith("err ECONNRESET", w.Peer.Try($"wait {id}"));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void Refused_BothWays_ByRst()
    {
        using var w = InteropRig.Start();
        Assert.StartsWith("err ECONNREFUSED", w.Peer.Try($"connect {Stack} 9"));
        var s = w.H.Socket();
        Assert.Equal(-ECONNREFUSED, s.Connect(StackHarness.HostIp, 9));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void HalfClose_ByLinux_StackReadsEndOfStream_AndStillSends()
    {
        using var w = InteropRig.Start();
        var (a, id) = Connected(w);
        w.Peer.Do($"send {id} 100000 51");
        w.Peer.Do($"shut {id} 1");
        var got = a.ReceiveAll();
        Assert.Equal((100000L, GeneratedStream.Sha256(51, 100000), 0L), got);
        Assert.NotEqual(0, (int)(a.Locked(s => s.Readiness()) & PollEvents.RdHup));
        w.Peer.Post($"recvall {id}");
        Assert.Equal(300000, a.SendGenerated(52, 300000));
        a.Shutdown(1);
        var back = LinuxPeer.Ok("recvall", w.Peer.ReadReply("recvall"));
        Assert.Equal(("300000", GeneratedStream.Sha256(52, 300000)), (back[0], back[1]));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void HalfClose_ByStack_LinuxReadsEndOfStream_AndStillSends()
    {
        using var w = InteropRig.Start();
        var (a, id) = Connected(w);
        w.Peer.Post($"recvall {id}");
        a.SendGenerated(61, 100000);
        Assert.Equal(0, a.Shutdown(1));
        var back = LinuxPeer.Ok("recvall", w.Peer.ReadReply("recvall"));
        Assert.Equal(("100000", GeneratedStream.Sha256(61, 100000)), (back[0], back[1]));
        w.Peer.Do($"send {id} 300000 62");
        w.Peer.Do($"close {id}");
        Assert.Equal((300000L, GeneratedStream.Sha256(62, 300000), 0L), a.ReceiveAll());
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void ManyConcurrentConnections_200_AllEchoedWhole()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port, backlog: 256);
        var r = w.Peer.Do($"many {Stack} {Port} 200 3000 700");
        Assert.Equal("200", r[0]);
        Until(w, () => server.Finished == 200, "the server finished all 200");
        server.ThrowIfFailed();
        Assert.Equal(200 * 3000L, server.BytesEchoed);
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void ManyConcurrentConnections_200_UnderLoss()
    {
        using var w = InteropRig.Start(new LossProfile(0.03, 0.03, 0.01), seed: 17);
        using var server = new StackEchoServer(w.H, Port, backlog: 256);
        var r = w.Peer.Do($"many {Stack} {Port} 200 3000 900");
        Assert.Equal("200", r[0]);
        Until(w, () => server.Finished == 200, "the server finished all 200");
        server.ThrowIfFailed();
        AssertLossWasReal(w, "lossy");
    }

    [SkippableFact]
    public void Keepalive_DetectsADeadPeer()
    {
        using var w = InteropRig.Start();
        var (a, _) = Connected(w);
        a.SetInt(SOL_SOCKET, SO_KEEPALIVE, 1);
        a.SetInt(IPPROTO_TCP, TCP_KEEPIDLE, 1);
        a.SetInt(IPPROTO_TCP, TCP_KEEPINTVL, 1);
        a.SetInt(IPPROTO_TCP, TCP_KEEPCNT, 3);
        int probes = 0, answers = 0;
        w.H.Outbound.Observe = f =>
        {
            if (Frames.Tcp(f) is { SourcePort: Port, PayloadLength: <= 1 } t && (t.Flags & (Frames.Syn | Frames.Fin | Frames.Rst)) == 0) probes++;
        };
        w.H.Inbound.Observe = f =>
        {
            if (probes > 0 && Frames.Tcp(f) is { DestinationPort: Port }) answers++;
        };
        // Alive: Linux answers the probes and the connection stays up.
        Until(w, () => w.H.Locked(_ => answers >= 2), "Linux answering keepalive probes");
        Assert.Equal(PollEvents.None, a.Locked(s => s.Readiness()) & (PollEvents.Err | PollEvents.Hup));
        // Dead: the Linux side goes away without a word (its interface down: no FIN, no RST).
        w.Ns.Ip("link", "set", w.H.TapName, "down");
        a.WaitFor(PollEvents.Err | PollEvents.Hup, TimeSpan.FromMinutes(1));
        Assert.Equal(ETIMEDOUT, a.Locked(s => s.TakeError()));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void TimeWait_OnTheStack_TheSameFourTupleConnectsAgain()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port, closeAtOnce: true); // the stack closes first: TIME_WAIT is its
        for (int i = 1; i <= 3; i++)
        {
            var c = ConnectFromPort40000(w);
            Assert.Equal("40000", c[1]);
            Assert.Equal("eof", w.Peer.Do($"wait {c[0]}")[0]);
            w.Peer.Do($"close {c[0]}");
            Until(w, () => server.Finished == i, $"connection {i} accepted and closed");
        }
        server.ThrowIfFailed();
        w.H.ThrowIfThreadFailed();
    }

    /// <summary>
    /// The Linux peer connects to the stack from port 40000. Its previous connection on that port may still be in
    /// LAST_ACK for a moment (its FIN went out on close; the stack's ACK of it is on the way, later under load), and
    /// Linux refuses the 4-tuple with EADDRNOTAVAIL until then: retry for a few seconds. A stack that never ACKed
    /// the FIN would still fail here.
    /// </summary>
    private static string[] ConnectFromPort40000(InteropRig w)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            try
            {
                return w.Peer.Do($"connect {Stack} {Port} 40000");
            }
            catch (InvalidOperationException e) when (e.Message.Contains("EADDRNOTAVAIL", StringComparison.Ordinal) && DateTime.UtcNow < until)
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>A stack-accepted connection from the Linux peer: the stack's socket and the peer's socket id.</summary>
    private static (StackSocket Accepted, string PeerId) Connected(InteropRig w)
    {
        var l = w.H.Socket();
        l.Bind(Port);
        l.Listen();
        var c = w.Peer.Do($"connect {Stack} {Port}");
        var a = l.Accept();
        l.Close();
        return (a, c[0]);
    }

    private static void AssertLossWasReal(InteropRig w, string wire)
    {
        w.H.ThrowIfThreadFailed();
        if (wire != "lossy") return;
        w.H.Locked(_ =>
        {
            Assert.True(w.H.Outbound.Dropped > 0 && w.H.Inbound.Dropped > 0, $"out: {w.H.Outbound}; in: {w.H.Inbound}");
            Assert.True(w.H.Outbound.Reordered > 0 && w.H.Inbound.Reordered > 0, $"out: {w.H.Outbound}; in: {w.H.Inbound}");
            return 0;
        });
    }

    /// <summary>Polls <paramref name="condition"/> until true (a hang guard of a minute, scaled; never a timing).</summary>
    internal static void Until(InteropRig w, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Support.TestTimeouts.Scaled(TimeSpan.FromMinutes(1));
        while (!condition())
        {
            w.H.ThrowIfThreadFailed();
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"never: {what} (hang guard); out: {w.H.Outbound}; in: {w.H.Inbound}");
            Thread.Sleep(10);
        }
    }
}
