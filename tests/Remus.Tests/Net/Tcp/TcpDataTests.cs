using Xunit;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Tcp;
using Xunit.Abstractions;

namespace Remus.Tests.Net.Tcp;

public sealed class TcpDataTests(ITestOutputHelper output)
{
    private static readonly IPv4Address A = new(0x0A630002), B = new(0x0A630001);

    [Fact]
    public void Bulk_transfer_both_ways_on_a_clean_link()
    {
        var net = new TcpTestNet(10);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 4 << 20, 1);
        var down = new TcpTransfer(s, c, 3 << 20, 2);
        Assert.True(net.RunUntil(() => up.Done && down.Done, app: () => { up.Pump(); down.Pump(); }));
        up.AssertIntact();
        down.AssertIntact();
        Assert.Equal(0, a.Tcp.Stats.Retransmits + b.Tcp.Stats.Retransmits);
        output.WriteLine($"clean: {net.Now / 1e6:F1} ms of link time, {net.Delivered} segments");
    }

    [Theory]
    [InlineData(11, 0.05)]
    [InlineData(12, 0.10)]
    [InlineData(13, 0.07)]
    public void Bulk_transfer_under_loss_reordering_duplication_and_corruption(int seed, double loss)
    {
        var net = new TcpTestNet(seed) { Loss = loss, Reorder = 0.1, Duplicate = 0.02, Corrupt = 0.01 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 2 << 20, seed);
        var down = new TcpTransfer(s, c, 1 << 20, seed + 100);
        Assert.True(net.RunUntil(() => up.Done && down.Done, app: () => { up.Pump(); down.Pump(); }));
        up.AssertIntact();
        down.AssertIntact();
        Assert.True(a.Tcp.Stats.BadSegments + b.Tcp.Stats.BadSegments > 0);
        Assert.Equal(0, a.Tcp.Stats.SendErrors + b.Tcp.Stats.SendErrors); // no segment past the MTU
        output.WriteLine($"loss {loss}: {net.Now / 1e9:F2} s of link time, retransmits {a.Tcp.Stats.Retransmits}+{b.Tcp.Stats.Retransmits}, dropped {net.Dropped}");
    }

    [Fact]
    public void Heavy_loss_is_survived_by_timeouts()
    {
        var net = new TcpTestNet(14) { Loss = 0.2 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 100_000, 3);
        Assert.True(net.RunUntil(() => up.Done, 3_600_000_000_000, up.Pump));
        up.AssertIntact();
    }

    [Fact]
    public void Zero_window_then_reopen_with_the_window_update_lost()
    {
        var net = new TcpTestNet(15);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b, configure: x => x.SetOption(1, TcpSocket.SoRcvBuf, BitConverter.GetBytes(16384)));
        var t = new TcpTransfer(c, s, 300_000, 4) { ReadPaused = true };
        // The receiver does not read: its window closes and the sender keeps probing (persist timer) for a minute.
        net.Advance(60_000_000_000, t.Pump);
        Assert.Equal(0, c.Tcb!.SndWnd);
        Assert.InRange(s.ReadableBytes, s.Tcb!.Rcv.Capacity - 127, s.Tcb.Rcv.Capacity); // within the window scale's granularity
        long probesBefore = net.Delivered;
        net.Advance(30_000_000_000, t.Pump);
        Assert.True(net.Delivered > probesBefore, "persist probes go on");
        // Reading opens the window; the first window update is lost: the next probe finds the open window.
        bool dropped = false;
        net.Drop = (src, _, _) => !dropped && src == B && (dropped = true);
        t.ReadPaused = false;
        Assert.True(net.RunUntil(() => t.Done, app: t.Pump));
        Assert.True(dropped);
        t.AssertIntact();
    }

    [Fact]
    public void Nagle_holds_small_writes_until_acked_and_nodelay_does_not()
    {
        var net = new TcpTestNet(16) { LatencyNs = 10_000_000 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        long before = a.Tcp.Stats.SegmentsOut;
        for (int i = 0; i < 10; i++) c.Send(new byte[10], 0, null);
        Assert.Equal(1, a.Tcp.Stats.SegmentsOut - before);
        Assert.Equal(0, c.SetOption(6, TcpSocket.TcpNoDelay, BitConverter.GetBytes(1)));
        before = a.Tcp.Stats.SegmentsOut;
        for (int i = 0; i < 10; i++) c.Send(new byte[10], 0, null);
        Assert.True(a.Tcp.Stats.SegmentsOut - before >= 10);
        var buf = new byte[1000];
        Assert.True(net.RunUntil(() => s.ReadableBytes == 200));
        Assert.Equal(200, s.Receive(buf, TcpSocket.MsgPeek, out _, out _));
        Assert.Equal(200, s.Receive(buf, 0, out _, out _));
    }

    [Fact]
    public void Half_close_lets_the_other_direction_go_on()
    {
        var net = new TcpTestNet(17);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 50_000, 5);
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
        Assert.True(net.RunUntil(() => c.Tcb!.State == TcpState.FinWait2, 1_000_000_000));
        Assert.Equal(TcpState.CloseWait, s.Tcb!.State);
        Assert.True((s.Readiness() & PollEvents.RdHup) != 0);
        Assert.Equal(-TcpErrno.EPIPE, c.Send([1], 0, null));
        var down = new TcpTransfer(s, c, 80_000, 6);
        Assert.True(net.RunUntil(() => down.Done, app: down.Pump));
        down.AssertIntact();
        Assert.True(net.RunUntil(() => s.Tcb!.State == TcpState.Closed));
        Assert.Equal(TcpState.TimeWait, c.Tcb!.State);
        Assert.Equal(PollEvents.Hup | PollEvents.Readable | PollEvents.RdHup | PollEvents.Writable, s.Readiness());
    }

    [Fact]
    public void Simultaneous_close_goes_through_closing_to_time_wait()
    {
        var net = new TcpTestNet(18);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        c.Shutdown(1);
        s.Shutdown(1);
        Assert.Equal(TcpState.FinWait1, c.Tcb!.State);
        net.Step();
        Assert.Equal(TcpState.Closing, c.Tcb.State);
        Assert.Equal(TcpState.Closing, s.Tcb!.State);
        Assert.True(net.RunUntil(() => c.Tcb.State == TcpState.TimeWait && s.Tcb.State == TcpState.TimeWait, 1_000_000_000));
        c.Close();
        s.Close();
        Assert.Equal(2, a.Tcp.ConnectionCount + b.Tcp.ConnectionCount);
        Assert.Equal(2, a.Tcp.TimeWaitCount + b.Tcp.TimeWaitCount);
        net.Advance(61_000_000_000);
        Assert.Equal(0, a.Tcp.ConnectionCount + b.Tcp.ConnectionCount);
        Assert.Equal(0, a.Tcp.TimeWaitCount + b.Tcp.TimeWaitCount);
    }

    [Fact]
    public void Time_wait_holds_the_port_for_60_seconds_unless_so_reuseaddr()
    {
        var net = new TcpTestNet(19);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b, 80);
        // The server closes first: its side goes to TIME_WAIT.
        s.Close();
        Assert.True(net.RunUntil(() => c.Receive(new byte[1], 0, out _, out _) == 0));
        c.Close();
        Assert.True(net.RunUntil(() => b.Tcp.Connections.Any(x => x.State == TcpState.TimeWait) && a.Tcp.ConnectionCount == 0, 5_000_000_000));
        // Also close the listener from Connect: only the TIME_WAIT connection holds port 80.
        foreach (var l in b.Tcp.Connections.ToList()) Assert.Equal(TcpState.TimeWait, l.State);
        var listener = b.Tcp.Ports.On(80).Select(x => x.Socket).First(x => x is { IsListening: true })!;
        listener.Close();
        var plain = b.NewSocket();
        Assert.Equal(-TcpErrno.EADDRINUSE, plain.Bind(TcpTestNet.Ep(B, 80)));
        var reuse = b.NewSocket();
        reuse.SetOption(1, TcpSocket.SoReuseAddr, BitConverter.GetBytes(1));
        Assert.Equal(0, reuse.Bind(TcpTestNet.Ep(B, 80)));
        Assert.Equal(0, reuse.Listen(8));
        net.Advance(60_000_000_000);
        Assert.Equal(0, b.Tcp.ConnectionCount);
        Assert.Equal(0, plain.Bind(new NetEndpoint(B, 81)));
    }

    [Fact]
    public void Close_with_unread_data_resets_the_peer()
    {
        var net = new TcpTestNet(20);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        c.Send(new byte[1000], 0, null);
        Assert.True(net.RunUntil(() => s.ReadableBytes == 1000));
        s.Close();
        Assert.True(net.RunUntil(() => (c.Readiness() & PollEvents.Err) != 0));
        Assert.Equal(PollEvents.Err | PollEvents.Hup | PollEvents.Readable | PollEvents.RdHup | PollEvents.Writable, c.Readiness());
        Assert.Equal(-TcpErrno.ECONNRESET, c.Receive(new byte[10], 0, out _, out _));
        Assert.Equal(0, c.Receive(new byte[10], 0, out _, out _));
        Assert.Equal(-TcpErrno.EPIPE, c.Send([1], 0, null));
        Assert.Equal(0, a.Tcp.ConnectionCount + b.Tcp.ConnectionCount);
    }

    [Fact]
    public void Linger_zero_close_sends_rst()
    {
        var net = new TcpTestNet(21);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var linger = new byte[8];
        BitConverter.TryWriteBytes(linger, 1);
        Assert.Equal(0, c.SetOption(1, TcpSocket.SoLinger, linger));
        c.Close();
        Assert.Equal(0, a.Tcp.ConnectionCount);
        Assert.True(net.RunUntil(() => s.Tcb!.State == TcpState.Closed));
        Assert.Equal((int)TcpErrno.ECONNRESET, s.TakeError());
    }

    [Fact]
    public void Keepalive_kills_a_dead_peer()
    {
        var net = new TcpTestNet(22);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        Assert.Equal(0, c.SetOption(1, TcpSocket.SoKeepAlive, BitConverter.GetBytes(1)));
        Assert.Equal(0, c.SetOption(6, TcpSocket.TcpKeepIdle, BitConverter.GetBytes(10)));
        Assert.Equal(0, c.SetOption(6, TcpSocket.TcpKeepIntvl, BitConverter.GetBytes(2)));
        Assert.Equal(0, c.SetOption(6, TcpSocket.TcpKeepCnt, BitConverter.GetBytes(3)));
        // While the peer answers, keepalive probes keep the connection.
        net.Advance(100_000_000_000);
        Assert.Equal(TcpState.Established, c.Tcb!.State);
        net.Drop = (_, _, _) => true;
        long lastHeard = c.Tcb.LastRecvNs;
        Assert.True(net.RunUntil(() => (c.Readiness() & PollEvents.Err) != 0));
        Assert.Equal((int)TcpErrno.ETIMEDOUT, c.TakeError());
        // Idle 10 s, then 3 probes 2 s apart, each unanswered.
        Assert.Equal(16_000_000_000L, net.Now - lastHeard);
    }

    [Fact]
    public void Unacknowledged_data_gives_up_with_etimedout()
    {
        var net = new TcpTestNet(23);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, _) = net.Connect(a, b);
        net.Drop = (_, _, _) => true;
        c.Send(new byte[100], 0, null);
        Assert.True(net.RunUntil(() => (c.Readiness() & PollEvents.Err) != 0, 3_600_000_000_000));
        Assert.Equal((int)TcpErrno.ETIMEDOUT, c.TakeError());
        Assert.Equal(TcpControlBlock.MaxRetransmits, (int)a.Tcp.Stats.Timeouts); // 15 retransmission timeouts, as tcp_retries2
        output.WriteLine($"gave up after {net.Now / 1e9:F0} s");
    }
}
