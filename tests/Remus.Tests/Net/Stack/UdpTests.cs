using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>UDP sockets: two stacks on a fake segment, the loopback, binding rules, errors and options.</summary>
public sealed class UdpTests
{
    private const int EAGAIN = 11, EINVAL = 22, EACCES = 13, EMSGSIZE = 90, EADDRINUSE = 98, EADDRNOTAVAIL = 99,
        ENETUNREACH = 101, ENOTCONN = 107, ECONNREFUSED = 111, EDESTADDRREQ = 89, EPROTONOSUPPORT = 93, EPERM = 1;

    private readonly ManualClock _clock = new();

    private (NetStack A, NetStack B, FakeSegment Wire) TwoStacks()
    {
        var wire = new FakeSegment();
        var a = new NetStack(() => _clock.Now, Spec("10.0.0.1", "02:52:4d:00:00:01"), _ => new NoTcp());
        var b = new NetStack(() => _clock.Now, Spec("10.0.0.2", "02:52:4d:00:00:02"), _ => new NoTcp());
        wire.Attach(a);
        wire.Attach(b);
        return (a, b, wire);
    }

    private static byte[] Bytes(int n, int seed = 1) => Enumerable.Range(0, n).Select(i => (byte)(i * seed + 11)).ToArray();

    [Fact]
    public void Udp_echo_between_two_stacks_over_a_segment()
    {
        var (a, b, wire) = TwoStacks();
        var server = UdpBound(b, "0.0.0.0", 7);
        var client = Udp(a).Socket;
        Assert.Equal(5, client.Send("hello"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 7)));
        wire.Pump();
        var (r, data, from) = Recv(server);
        Assert.Equal(5, r);
        Assert.Equal("hello"u8.ToArray(), data);
        Assert.Equal(Ip("10.0.0.1"), from.Address);
        Assert.InRange(from.Port, 32768, 60999);
        Assert.Equal(5, server.Send(data, 0, from));
        wire.Pump();
        (r, data, from) = Recv(client);
        Assert.Equal("hello"u8.ToArray(), data);
        Assert.Equal(new NetEndpoint(Ip("10.0.0.2"), 7), from);
        Assert.Equal(0, a.Stats.TotalDrops + b.Stats.TotalDrops);
        // Every frame on the wire carried correct IPv4 and UDP checksums.
        foreach (var f in wire.Seen.Where(f => EtherType(f) == 0x0800))
        {
            var p = IpPacket(f);
            var u = p.AsSpan(20);
            Assert.Equal(Udp(Src(p), BinaryPrimitives.ReadUInt16BigEndian(u), Dst(p), BinaryPrimitives.ReadUInt16BigEndian(u[2..]), u[8..]), u.ToArray());
        }
    }

    [Fact]
    public void Large_datagrams_are_fragmented_on_send_and_reassembled_on_receive()
    {
        var (a, b, wire) = TwoStacks();
        var server = UdpBound(b, "10.0.0.2", 9000);
        var client = Udp(a).Socket;
        var big = Bytes(30_000, 3);
        Assert.Equal(30_000, client.Send(big, 0, new NetEndpoint(Ip("10.0.0.2"), 9000)));
        wire.Pump();
        Assert.Equal(big, Recv(server).Data);
        Assert.True(wire.Seen.Count(f => EtherType(f) == 0x0800) >= 21);
        Assert.All(wire.Seen, f => Assert.True(f.Length <= 1514));
        // IP_MTU_DISCOVER = IP_PMTUDISC_DO: no fragmenting, EMSGSIZE.
        Assert.Equal(0, client.SetOption(0, 10, BitConverter.GetBytes(2)));
        Assert.Equal(-EMSGSIZE, client.Send(big, 0, new NetEndpoint(Ip("10.0.0.2"), 9000)));
        Assert.Equal(-EMSGSIZE, client.Send(new byte[65508], 0, new NetEndpoint(Ip("10.0.0.2"), 9000)));
    }

    [Fact]
    public void Udp_over_the_loopback_of_a_stack_without_an_interface()
    {
        var stack = NewStack(_clock, null, out _);
        var server = UdpBound(stack, "127.0.0.1", 5000);
        var client = Udp(stack).Socket;
        var woken = new List<PollEvents>();
        Assert.Equal(PollEvents.Writable | PollEvents.WrBand, server.Readiness());
        Assert.Equal(3, client.Send("abc"u8, 0, new NetEndpoint(IPv4Address.Loopback, 5000)));
        Assert.True((server.Readiness() & PollEvents.In) != 0);
        Assert.Equal(3, server.ReadableBytes);
        // MSG_PEEK leaves it; a short buffer truncates and reports the whole length.
        var buf = new byte[2];
        Assert.Equal(2, server.Receive(buf, 2, out var from, out int full));
        Assert.Equal(3, full);
        Assert.Equal(client.LocalEndpoint.Port, from.Port);
        Assert.Equal(IPv4Address.Loopback, from.Address);
        Assert.Equal(2, server.Receive(buf, 0, out _, out full));
        Assert.Equal(3, full);
        Assert.Equal(-EAGAIN, server.Receive(buf, 0, out _, out _));
        // Nothing but the loopback: anything else has no route.
        Assert.Equal(-ENETUNREACH, client.Send("x"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 5000)));
        // 0.0.0.0 means this host.
        Assert.Equal(1, client.Send("y"u8, 0, new NetEndpoint(IPv4Address.Any, 5000)));
        Assert.Equal("y"u8.ToArray(), Recv(server).Data);
    }

    [Fact]
    public void The_domains_own_address_goes_through_the_loopback_not_the_wire()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        var server = UdpBound(stack, "0.0.0.0", 5000);
        var client = Udp(stack).Socket;
        Assert.Equal(1, client.Send("z"u8, 0, new NetEndpoint(Ours, 5000)));
        var (_, data, from) = Recv(server);
        Assert.Equal("z"u8.ToArray(), data);
        Assert.Equal(Ours, from.Address);
        Assert.Empty(link.Frames);
    }

    [Fact]
    public void A_connected_socket_hears_port_unreachable_as_econnrefused()
    {
        // Over the loopback...
        var stack = NewStack(_clock, null, out _);
        var sock = Udp(stack).Socket;
        Assert.Equal(0, sock.Connect(new NetEndpoint(IPv4Address.Loopback, 9)));
        Assert.Equal(IPv4Address.Loopback, sock.LocalEndpoint.Address);
        Assert.Equal(1, sock.Send("x"u8, 0, null));
        Assert.Equal(PollEvents.Err, sock.Readiness() & PollEvents.Err);
        Assert.Equal(-ECONNREFUSED, Recv(sock).Result);
        Assert.Equal(-EAGAIN, Recv(sock).Result); // taken once
        // ...and from another stack.
        var (a, _, wire) = TwoStacks();
        var c = Udp(a).Socket;
        Assert.Equal(0, c.Connect(new NetEndpoint(Ip("10.0.0.2"), 9)));
        c.Send("x"u8, 0, null);
        wire.Pump();
        var err = new byte[4];
        Assert.Equal(4, c.GetOption(1, 4, err)); // SO_ERROR
        Assert.Equal(ECONNREFUSED, BitConverter.ToInt32(err));
        Assert.Equal(0, c.TakeError());
        // An unconnected socket is not told (Linux reports only to connected ones).
        var u = Udp(a).Socket;
        u.Send("x"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 9));
        wire.Pump();
        Assert.Equal(0, u.TakeError());
    }

    [Fact]
    public void Bind_follows_linuxs_rules()
    {
        var stack = NewStack(_clock, Spec(), out _);
        var s1 = UdpBound(stack, "0.0.0.0", 6000);
        var s2 = Udp(stack).Socket;
        Assert.Equal(-EADDRINUSE, s2.Bind(new NetEndpoint(Ours, 6000)));
        Assert.Equal(-EADDRNOTAVAIL, s2.Bind(new NetEndpoint(Ip("10.0.0.77"), 6000)));
        Assert.Equal(0, s2.Bind(new NetEndpoint(Ours, 6001)));
        Assert.Equal(-EINVAL, s2.Bind(new NetEndpoint(Ours, 6002))); // bound already
        // SO_REUSEADDR on both shares a port.
        var r1 = Udp(stack).Socket;
        var r2 = Udp(stack).Socket;
        var one = BitConverter.GetBytes(1);
        Assert.Equal(0, r1.SetOption(1, 2, one));
        Assert.Equal(0, r2.SetOption(1, 2, one));
        Assert.Equal(0, r1.Bind(new NetEndpoint(IPv4Address.Any, 6100)));
        Assert.Equal(0, r2.Bind(new NetEndpoint(IPv4Address.Any, 6100)));
        // ...and SO_REUSEPORT too, spreading flows over the group, each flow always to the same socket.
        var group = Enumerable.Range(0, 4).Select(_ => Udp(stack).Socket).ToList();
        foreach (var g in group)
        {
            Assert.Equal(0, g.SetOption(1, 15, one));
            Assert.Equal(0, g.Bind(new NetEndpoint(IPv4Address.Any, 6200)));
        }
        var clients = Enumerable.Range(0, 16).Select(_ => Udp(stack).Socket).ToList();
        foreach (var c in clients) for (int k = 0; k < 2; k++) c.Send("q"u8, 0, new NetEndpoint(IPv4Address.Loopback, 6200));
        Assert.True(group.Count(g => g.ReadableBytes > 0) >= 2, "SO_REUSEPORT sent every flow to one socket");
        foreach (var g in group)
        {
            var sources = new List<ushort>();
            while (g.ReadableBytes > 0) sources.Add(Recv(g).From.Port);
            Assert.All(sources.GroupBy(p => p), grp => Assert.Equal(2, grp.Count()));
        }
        // Ephemeral ports come from 32768-60999 and are distinct.
        var ports = Enumerable.Range(0, 50).Select(_ => { var s = Udp(stack).Socket; s.Bind(default); return s.LocalEndpoint.Port; }).ToList();
        Assert.All(ports, p => Assert.InRange(p, 32768, 60999));
        Assert.Equal(50, ports.Distinct().Count());
        s1.Close();
        Assert.Equal(0, Udp(stack).Socket.Bind(new NetEndpoint(IPv4Address.Any, 6000)));
    }

    [Fact]
    public void Connect_fixes_the_source_and_disconnect_releases_an_autobound_port()
    {
        var stack = NewStack(_clock, Spec(gateway: "10.0.0.1"), out _);
        var s = Udp(stack).Socket;
        Assert.Equal(0, s.Connect(new NetEndpoint(Ip("192.0.2.5"), 53)));
        Assert.Equal(Ours, s.LocalEndpoint.Address);
        Assert.NotEqual(0, s.LocalEndpoint.Port);
        Assert.Equal(new NetEndpoint(Ip("192.0.2.5"), 53), s.RemoteEndpoint);
        Assert.Equal(0, s.Connect(default, disconnect: true));
        Assert.Null(s.RemoteEndpoint);
        Assert.Equal(default, s.LocalEndpoint);
        Assert.Equal(-EDESTADDRREQ, s.Send("x"u8, 0, null));
        // A socket bound to the loopback cannot reach the network.
        var lo = UdpBound(stack, "127.0.0.1", 0);
        Assert.Equal(-EINVAL, lo.Send("x"u8, 0, new NetEndpoint(Peer, 9)));
        Assert.Equal(-EINVAL, lo.Connect(new NetEndpoint(Peer, 9)));
        var noGateway = NewStack(_clock, Spec(), out _);
        Assert.Equal(-ENETUNREACH, Udp(noGateway).Socket.Connect(new NetEndpoint(Ip("192.0.2.5"), 53)));
        Assert.Equal(-ENETUNREACH, Udp(noGateway).Socket.Send("x"u8, 0, new NetEndpoint(Ip("192.0.2.5"), 53)));
    }

    [Fact]
    public void Broadcast_needs_so_broadcast_and_reaches_every_socket_on_the_port()
    {
        var (a, b, wire) = TwoStacks();
        var s = Udp(a).Socket;
        var bcast = new NetEndpoint(Ip("10.0.0.255"), 67);
        Assert.Equal(-EACCES, s.Send("x"u8, 0, bcast));
        Assert.Equal(-EACCES, s.Connect(new NetEndpoint(IPv4Address.Broadcast, 67)));
        Assert.Equal(0, s.SetOption(1, 6, BitConverter.GetBytes(1)));
        var one = BitConverter.GetBytes(1);
        var r1 = Udp(b).Socket; r1.SetOption(1, 2, one); r1.Bind(new NetEndpoint(IPv4Address.Any, 67));
        var r2 = Udp(b).Socket; r2.SetOption(1, 2, one); r2.Bind(new NetEndpoint(IPv4Address.Any, 67));
        Assert.Equal(1, s.Send("x"u8, 0, bcast));
        Assert.Equal(1, s.Send("y"u8, 0, new NetEndpoint(IPv4Address.Broadcast, 67)));
        wire.Pump();
        Assert.Equal(2, wire.Seen.Count(f => MacAddress.Read(f) == MacAddress.Broadcast && EtherType(f) == 0x0800));
        foreach (var r in new[] { r1, r2 })
        {
            Assert.Equal("x"u8.ToArray(), Recv(r).Data);
            Assert.Equal("y"u8.ToArray(), Recv(r).Data);
        }
        // The sender's own host hears its broadcasts too (as Linux loops them back); nobody answers with ICMP.
        var own = UdpBound(a, "0.0.0.0", 68);
        Assert.Equal(1, s.Send("z"u8, 0, new NetEndpoint(IPv4Address.Broadcast, 68)));
        Assert.Equal("z"u8.ToArray(), Recv(own).Data);
        wire.Seen.Clear();
        Assert.Equal(1, s.Send("w"u8, 0, new NetEndpoint(IPv4Address.Broadcast, 69))); // no listener anywhere
        wire.Pump();
        Assert.DoesNotContain(wire.Seen, f => EtherType(f) == 0x0800 && IpPacket(f)[9] == 1);
    }

    [Fact]
    public void The_receive_queue_is_bounded_by_so_rcvbuf()
    {
        var stack = NewStack(_clock, null, out _);
        var server = UdpBound(stack, "127.0.0.1", 7000);
        var client = Udp(stack).Socket;
        var payload = new byte[1000];
        for (int i = 0; i < 1000; i++) client.Send(payload, 0, new NetEndpoint(IPv4Address.Loopback, 7000));
        int queued = 0;
        while (Recv(server).Result > 0) queued++;
        // rcvbuf 212992, each charged 1000 + 576: Linux admits while the charge is not over the limit.
        Assert.Equal(212992 / 1576 + 1, queued);
        Assert.Equal(1000 - queued, stack.Stats.Drops(NetDrop.ReceiveBufferFull));
        var v = new byte[4];
        Assert.Equal(0, server.SetOption(1, 8, BitConverter.GetBytes(4096)));
        server.GetOption(1, 8, v);
        Assert.Equal(8192, BitConverter.ToInt32(v)); // doubled, as Linux
        server.SetOption(1, 8, BitConverter.GetBytes(1 << 30));
        server.GetOption(1, 8, v);
        Assert.Equal(2 * 212992, BitConverter.ToInt32(v)); // capped at rmem_max
    }

    [Fact]
    public void All_receive_queues_together_are_bounded()
    {
        var stack = NewStack(_clock, null, out _);
        var client = Udp(stack).Socket;
        var payload = new byte[1000];
        var servers = Enumerable.Range(0, 200).Select(i => UdpBound(stack, "127.0.0.1", (ushort)(10000 + i))).ToList();
        foreach (var s in servers)
            for (int k = 0; k < 150; k++) client.Send(payload, 0, s.LocalEndpoint);
        Assert.True(stack.Udp.MemoryCharged <= NetLimits.UdpMemory, $"{stack.Udp.MemoryCharged} bytes queued");
        Assert.True(stack.Stats.Drops(NetDrop.ReceiveBufferFull) > 0);
        foreach (var s in servers) s.Close();
        Assert.Equal(0, stack.Udp.MemoryCharged);
    }

    [Fact]
    public void Options_read_back_and_shutdown()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var s = Udp(stack).Socket;
        var v = new byte[4];
        Assert.Equal(4, s.GetOption(1, 3, v)); Assert.Equal(2, BitConverter.ToInt32(v));   // SO_TYPE
        Assert.Equal(4, s.GetOption(1, 38, v)); Assert.Equal(17, BitConverter.ToInt32(v)); // SO_PROTOCOL
        Assert.Equal(4, s.GetOption(1, 39, v)); Assert.Equal(2, BitConverter.ToInt32(v));  // SO_DOMAIN
        Assert.Equal(4, s.GetOption(0, 2, v)); Assert.Equal(64, BitConverter.ToInt32(v));  // IP_TTL default
        Assert.Equal(0, s.SetOption(0, 2, BitConverter.GetBytes(7)));
        Assert.Equal(-EINVAL, s.SetOption(0, 2, BitConverter.GetBytes(0)));
        Assert.Equal(0, s.SetOption(0, 1, BitConverter.GetBytes(0x10)));
        Assert.Equal(0, s.SetOption(1, 9, BitConverter.GetBytes(1)));                      // SO_KEEPALIVE: stored
        s.GetOption(1, 9, v); Assert.Equal(1, BitConverter.ToInt32(v));
        Assert.Equal(-92, s.SetOption(6, 1, BitConverter.GetBytes(1)));                     // TCP_NODELAY on UDP
        s.Send("t"u8, 0, new NetEndpoint(Peer, 1));
        var p = IpPacket(Assert.Single(link.Take()));
        Assert.Equal((0x10, 7), (p[1], p[8]));
        Assert.Equal(0x4000, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(6)) & 0x4000); // DF: it fits (PMTUDISC_WANT)
        Assert.Equal(-ENOTCONN, s.Shutdown(0));
        Assert.Equal(0, Recv(s).Result); // shut for reading and empty: end of file
        Assert.True((s.Readiness() & PollEvents.RdHup) != 0);
    }

    [Fact]
    public void Socket_creation_errors()
    {
        var stack = NewStack(_clock, null, out _);
        Assert.Equal(-EPROTONOSUPPORT, stack.CreateSocket(2, 6, out _));
        Assert.Equal(-EPROTONOSUPPORT, stack.CreateSocket(1, 17, out _));
        Assert.Equal(-EPERM, stack.CreateSocket(3, 1, out _));
        Assert.Equal(-EACCES, stack.CreateSocket(2, 1, out _));
        Assert.Equal(-94, stack.CreateSocket(5, 0, out _));
        Assert.Equal(-EINVAL, stack.CreateSocket(12, 0, out _));
        Assert.Equal(0, stack.CreateSocket(2 | 0x800 | 0x80000, 17, out var s)); // SOCK_NONBLOCK | SOCK_CLOEXEC
        Assert.Equal(0, stack.CreateSocket(2, 0, out var t));
        Assert.NotEqual(s!.Id, t!.Id);
        Assert.Same(s, stack.SocketById(s.Id));
    }

    [Fact]
    public void Zero_checksum_is_accepted_and_a_bad_one_dropped()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var sock = UdpBound(stack, "0.0.0.0", 4000);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 1, Ours, 4000, "a"u8, zeroChecksum: true))));
        var bad = Udp(Peer, 1, Ours, 4000, "b"u8);
        bad[8] ^= 1;
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, bad)));
        Assert.Equal("a"u8.ToArray(), Recv(sock).Data);
        Assert.Equal(-EAGAIN, Recv(sock).Result);
        Assert.Equal(1, stack.Stats.Drops(NetDrop.BadChecksum));
    }
}
