using Xunit;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Remus.Sandbox.Net.Tcp;

namespace Remus.Tests.Net.Tcp;

public sealed class TcpHandshakeTests
{
    private static readonly IPv4Address A = new(0x0A630002), B = new(0x0A630001);

    [Fact]
    public void Handshake_negotiates_mss_window_scale_timestamps_and_sack()
    {
        var net = new TcpTestNet(1);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var ct = c.Tcb!;
        var st = s.Tcb!;
        Assert.Equal(TcpState.Established, ct.State);
        Assert.Equal(TcpState.Established, st.State);
        Assert.Equal(1460, ct.PeerMss);
        Assert.Equal(1448, ct.SendMss); // 1460 less the timestamp option
        Assert.True(ct.Timestamps && st.Timestamps);
        Assert.True(ct.SackOk && st.SackOk);
        Assert.Equal(7, ct.SndScale);
        Assert.Equal(7, st.SndScale);
        Assert.Equal(TcpTestNet.Ep(B, 80), c.RemoteEndpoint);
        Assert.Equal(TcpTestNet.Ep(A, c.LocalEndpoint.Port), s.RemoteEndpoint);
        Assert.InRange(c.LocalEndpoint.Port, PortTable.EphemeralFirst, PortTable.EphemeralLast);
        // The second connect() after an asynchronous success reports 0, then EISCONN.
        Assert.Equal(-TcpErrno.EISCONN, c.Connect(TcpTestNet.Ep(B, 80)));
        Span<byte> info = stackalloc byte[232];
        Assert.Equal(232, c.GetOption(6, TcpSocket.TcpInfo, info));
        Assert.Equal((byte)TcpState.Established, info[0]);
    }

    [Fact]
    public void Fresh_socket_behaves_as_linux()
    {
        var net = new TcpTestNet(1);
        var a = net.AddHost(A);
        var s = a.NewSocket();
        Assert.Equal(PollEvents.Out | PollEvents.WrNorm | PollEvents.Hup, s.Readiness());
        Assert.Equal(-TcpErrno.EPIPE, s.Send([1], 0, null));
        Assert.Equal(-TcpErrno.ENOTCONN, s.Receive(new byte[4], 0, out _, out _));
        Assert.Null(s.RemoteEndpoint);
        Span<byte> v = stackalloc byte[4];
        Assert.Equal(4, s.GetOption(1, TcpSocket.SoSndBuf, v));
        Assert.Equal(0, s.SetOption(1, TcpSocket.SoRcvBuf, BitConverter.GetBytes(65536)));
        s.GetOption(1, TcpSocket.SoRcvBuf, v);
        Assert.Equal(131072, BitConverter.ToInt32(v));
        s.GetOption(1, TcpSocket.SoType, v);
        Assert.Equal(1, BitConverter.ToInt32(v));
    }

    [Fact]
    public void Connect_to_a_closed_port_is_refused()
    {
        var net = new TcpTestNet(1);
        var a = net.AddHost(A);
        net.AddHost(B);
        var c = a.NewSocket();
        Assert.Equal(-TcpErrno.EINPROGRESS, c.Connect(TcpTestNet.Ep(B, 81)));
        Assert.Equal(-TcpErrno.EALREADY, c.Connect(TcpTestNet.Ep(B, 81)));
        Assert.True(net.RunUntil(() => (c.Readiness() & PollEvents.Err) != 0));
        Assert.Equal(-TcpErrno.ECONNREFUSED, c.Connect(TcpTestNet.Ep(B, 81)));
        Assert.Equal(0, c.TakeError());
        Assert.Equal(0, a.Tcp.ConnectionCount);
    }

    [Fact]
    public void Connect_to_a_silent_host_times_out()
    {
        var net = new TcpTestNet(1);
        var a = net.AddHost(A);
        net.AddHost(B);
        net.Drop = (_, _, _) => true;
        var c = a.NewSocket();
        c.Connect(TcpTestNet.Ep(B, 80));
        Assert.True(net.RunUntil(() => (c.Readiness() & PollEvents.Err) != 0));
        Assert.Equal((int)TcpErrno.ETIMEDOUT, c.TakeError());
        // 1 + 2 + 4 + ... + 64 s of SYN retries, as Linux's tcp_syn_retries = 6.
        Assert.InRange(net.Now, 127_000_000_000L, 130_000_000_000L);
    }

    [Fact]
    public void Simultaneous_open_connects_both_sides()
    {
        var net = new TcpTestNet(2);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var sa = a.NewSocket();
        var sb = b.NewSocket();
        Assert.Equal(0, sa.Bind(TcpTestNet.Ep(A, 5000)));
        Assert.Equal(0, sb.Bind(TcpTestNet.Ep(B, 6000)));
        Assert.Equal(-TcpErrno.EINPROGRESS, sa.Connect(TcpTestNet.Ep(B, 6000)));
        Assert.Equal(-TcpErrno.EINPROGRESS, sb.Connect(TcpTestNet.Ep(A, 5000)));
        Assert.True(net.RunUntil(() => sa.Tcb!.State == TcpState.Established && sb.Tcb!.State == TcpState.Established, 10_000_000_000));
        var t = new TcpTransfer(sa, sb, 100_000, 7);
        var u = new TcpTransfer(sb, sa, 100_000, 8);
        Assert.True(net.RunUntil(() => t.Done && u.Done, app: () => { t.Pump(); u.Pump(); }));
        t.AssertIntact();
        u.AssertIntact();
    }

    [Fact]
    public void Bind_rules_ephemeral_ports_and_reuse()
    {
        var net = new TcpTestNet(3);
        var a = net.AddHost(A);
        var s1 = a.NewSocket();
        var s2 = a.NewSocket();
        Assert.Equal(0, s1.Bind(TcpTestNet.Ep(A, 8080)));
        Assert.Equal(-TcpErrno.EADDRINUSE, s2.Bind(TcpTestNet.Ep(IPv4Address.Any, 8080)));
        Assert.Equal(-TcpErrno.EINVAL, s1.Bind(TcpTestNet.Ep(A, 8081)));
        Assert.Equal(-TcpErrno.EADDRNOTAVAIL, s2.Bind(TcpTestNet.Ep(new IPv4Address(0x01020304), 8081)));
        Assert.Equal(0, s2.Bind(TcpTestNet.Ep(A, 0)));
        Assert.InRange(s2.LocalEndpoint.Port, PortTable.EphemeralFirst, PortTable.EphemeralLast);
        // SO_REUSEPORT on both: two listeners on one port.
        var r1 = a.NewSocket();
        var r2 = a.NewSocket();
        foreach (var r in new[] { r1, r2 }) Assert.Equal(0, r.SetOption(1, TcpSocket.SoReusePort, BitConverter.GetBytes(1)));
        Assert.Equal(0, r1.Bind(TcpTestNet.Ep(A, 9000)));
        Assert.Equal(0, r2.Bind(TcpTestNet.Ep(A, 9000)));
        Assert.Equal(0, r1.Listen(4));
        Assert.Equal(0, r2.Listen(4));
        s1.Close();
        var s3 = a.NewSocket();
        Assert.Equal(0, s3.Bind(TcpTestNet.Ep(A, 8080)));
    }

    [Fact]
    public void Syn_flood_costs_bounded_memory_and_a_real_client_gets_in_on_its_retry()
    {
        var net = new TcpTestNet(4);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var l = b.NewSocket();
        Assert.Equal(0, l.Bind(TcpTestNet.Ep(B, 80)));
        Assert.Equal(0, l.Listen(64));
        // 20 000 spoofed SYNs from addresses that never answer.
        var seg = new byte[40];
        for (int i = 0; i < 20_000; i++)
        {
            var src = new IPv4Address(0x0B000000u + (uint)i);
            int n = TcpHeader.Write(seg, (ushort)(1024 + i % 60000), 80, (uint)i * 7919, 0, TcpFlags.Syn, 65535, new TcpHeader.OutOptions { Mss = 1460, WindowScale = -1 });
            TcpHeader.FinishChecksum(seg.AsSpan(0, n), src, B);
            b.Tcp.Receive(src, B, seg.AsSpan(0, n), 0);
        }
        Assert.Equal(64, l.SynQueue.Count);
        Assert.Equal(64, b.Tcp.ConnectionCount);
        Assert.Equal(20_000 - 64, b.Tcp.Stats.SynsDropped);
        Assert.Equal(0, b.Tcp.Budget.InUse);
        // A real client: its first SYN finds the queue full of fresh entries and is dropped; by its retry (1 s) the
        // flood's entries have retransmitted their SYN-ACKs unanswered, and the oldest gives way to it.
        long start = net.Now;
        var c = a.NewSocket();
        c.Connect(TcpTestNet.Ep(B, 80));
        IInetSocket? acc = null;
        Assert.True(net.RunUntil(() => acc != null, app: () => { if (acc == null) l.Accept(out acc); }));
        Assert.InRange(net.Now - start, 1_000_000_000L, 1_100_000_000L);
        Assert.True(b.Tcp.Stats.SynQueueEvictions > 0);
        Assert.True(l.SynQueue.Count <= 64);
        // The rest time out after their SYN-ACK retries.
        net.Advance(70_000_000_000);
        Assert.Equal(0, l.SynQueue.Count);
        Assert.Equal(1, b.Tcp.ConnectionCount);
    }

    [Fact]
    public void Accept_queue_is_bounded_by_the_backlog()
    {
        var net = new TcpTestNet(5);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var l = b.NewSocket();
        l.Bind(TcpTestNet.Ep(B, 80));
        l.Listen(2);
        var clients = Enumerable.Range(0, 6).Select(_ => a.NewSocket()).ToList();
        foreach (var c in clients) c.Connect(TcpTestNet.Ep(B, 80));
        net.Advance(500_000_000);
        Assert.Equal(3, l.AcceptQueue.Count); // backlog + 1, as Linux
        Assert.Equal(PollEvents.Readable, l.Readiness());
        // Accepting makes room; the others complete when their handshake is retried.
        int accepted = 0;
        Assert.True(net.RunUntil(() => accepted == 6, app: () => { while (l.Accept(out _) == 0) accepted++; }));
    }
}
