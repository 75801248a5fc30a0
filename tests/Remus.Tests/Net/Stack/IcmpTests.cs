using System.Buffers.Binary;
using Remus.Sandbox.Net;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>ICMP at the frame level: echo replies with correct checksums, errors sent and received, the rate limit.</summary>
public sealed class IcmpTests
{
    private readonly ManualClock _clock = new();

    [Fact]
    public void A_ping_gets_a_reply_with_the_same_data_and_correct_checksums_after_arp()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        var data = Enumerable.Range(0, 56).Select(i => (byte)i).ToArray();
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 1, IcmpEcho(0x1234, 7, data))));
        // The peer's MAC is unknown: the stack asks first, holding the reply.
        var ask = Assert.Single(link.Take());
        Assert.Equal(0x0806, EtherType(ask));
        stack.ReceiveFrame(Ethernet(OurMac, PeerMac, 0x0806, Arp(2, PeerMac, Peer, OurMac, Ours)));
        var reply = IpPacket(Assert.Single(link.Take()));
        Assert.Equal(Ours, Src(reply));
        Assert.Equal(Peer, Dst(reply));
        Assert.Equal(1, reply[9]);
        var icmp = reply.AsSpan(20);
        Assert.Equal(0, Checksum(icmp));
        Assert.Equal(IcmpEcho(0x1234, 7, data, type: 0), icmp.ToArray());
    }

    [Fact]
    public void Bad_checksums_and_broadcast_pings_get_no_reply()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var echo = IcmpEcho(1, 1, [1, 2, 3]);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 1, echo, badChecksum: true)));
        var corrupt = echo.ToArray();
        corrupt[9] ^= 0xFF;
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 1, corrupt)));
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ip("10.0.0.255"), 1, echo), MacAddress.Broadcast));
        Assert.Empty(link.Frames);
        Assert.Equal(2, stack.Stats.Drops(NetDrop.BadChecksum));
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 1, echo)));
        Assert.Single(link.Take());
    }

    [Fact]
    public void The_loopback_answers_pings_too()
    {
        var stack = NewStack(_clock, null, out _);
        // A ping to 127.0.0.1 from the stack itself: the reply comes back through the loopback to ICMP's receive.
        stack.Enter();
        stack.Ip.Send(IPv4Address.Loopback, IPv4Address.Loopback, 1, IcmpEcho(5, 6, [9, 9]), dontFragment: false);
        stack.Exit();
        Assert.Equal(2, stack.Stats.LoopbackDatagrams); // the request and the reply
        Assert.Equal(0, stack.Stats.TotalDrops);
    }

    [Fact]
    public void A_datagram_to_a_closed_port_gets_port_unreachable_quoting_it()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var udp = Udp(Peer, 5555, Ours, 9, "hi"u8);
        var offending = Ipv4(Peer, Ours, 17, udp, id: 77);
        stack.ReceiveFrame(FromPeer(offending));
        var p = IpPacket(Assert.Single(link.Take()));
        Assert.Equal(Peer, Dst(p));
        Assert.Equal(1, p[9]);
        var icmp = p.AsSpan(20);
        Assert.Equal(0, Checksum(icmp));
        Assert.Equal(3, icmp[0]);
        Assert.Equal(3, icmp[1]);
        Assert.Equal(offending.AsSpan(0, 28).ToArray(), icmp[8..36].ToArray());
    }

    [Fact]
    public void Errors_are_rate_limited_per_host_and_in_all_so_a_flood_costs_bounded_traffic()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        // One host: a burst of 6, then one a second (Linux's icmp_ratelimit).
        for (int i = 0; i < 1000; i++) stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 5555, Ours, 9, "x"u8), id: (ushort)i)));
        Assert.Equal(6, link.Take().Count);
        _clock.Advance(TimeSpan.FromSeconds(1));
        for (int i = 0; i < 100; i++) stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 5555, Ours, 9, "x"u8), id: (ushort)i)));
        Assert.Single(link.Take());
        // Many hosts: the stack's bucket (burst 50, 1000 a second) bounds the total.
        _clock.Advance(TimeSpan.FromSeconds(1));
        for (int i = 0; i < 200; i++) Introduce(stack, link, new IPv4Address(0x0A000000u | (uint)(i + 20)));
        for (int i = 0; i < 1000; i++)
        {
            var from = new IPv4Address(0x0A000000u | (uint)(i % 200 + 20));
            stack.ReceiveFrame(FromPeer(Ipv4(from, Ours, 17, Udp(from, 5555, Ours, 9, "x"u8), id: (ushort)i)));
        }
        Assert.Equal(NetLimits.IcmpErrorBurst, link.Take().Count);
        Assert.True(stack.Ip.Icmp.PeerLimiter.Count <= IcmpPeerLimiter.MaxPeers);
        _clock.Advance(TimeSpan.FromMilliseconds(10)); // 1000/s: ten more tokens
        for (int i = 0; i < 100; i++)
        {
            var from = new IPv4Address(0x0A000000u | (uint)(i + 100));
            stack.ReceiveFrame(FromPeer(Ipv4(from, Ours, 17, Udp(from, 5555, Ours, 9, "x"u8), id: (ushort)i)));
        }
        Assert.Equal(10, link.Take().Count);
    }

    [Fact]
    public void No_error_about_a_broadcast_or_an_unknown_protocol_broadcast()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ip("10.0.0.255"), 17, Udp(Peer, 5555, Ip("10.0.0.255"), 9, "x"u8)), MacAddress.Broadcast));
        Assert.Empty(link.Take());
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 99, new byte[8])));
        var p = IpPacket(Assert.Single(link.Take()));
        Assert.Equal((3, 2), (p[20], p[21])); // protocol unreachable
        Assert.Equal(1, stack.Stats.Drops(NetDrop.UnknownProtocol));
    }

    [Fact]
    public void Fragmentation_needed_lowers_the_path_mtu_for_ten_minutes()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var sock = UdpBound(stack, "0.0.0.0", 4000);
        Assert.Equal(0, sock.Connect(new NetEndpoint(Peer, 9)));
        var sent = Ipv4(Ours, Peer, 17, Udp(Ours, 4000, Peer, 9, new byte[1400]), flagsOffset: 0x4000);
        byte[] tooBig = [3, 4, 0, 0, 0, 0, 0x03, 0xE8, .. sent.AsSpan(0, 28)]; // next-hop MTU 1000
        BinaryPrimitives.WriteUInt16BigEndian(tooBig.AsSpan(2), Checksum(tooBig));
        stack.ReceiveFrame(FromPeer(Ipv4(Ip("10.0.0.1"), Ours, 1, tooBig)));
        Assert.Equal(1000, stack.Ip.MtuFor(Peer));
        Assert.Equal(1500, stack.Ip.MtuFor(Ip("10.0.0.7")));
        var v = new byte[4];
        sock.GetOption(0, 14, v); // IP_MTU
        Assert.Equal(1000, BitConverter.ToInt32(v));
        Assert.Equal(0, sock.TakeError()); // not a hard error
        // Datagrams now go in pieces that fit; with IP_PMTUDISC_DO, EMSGSIZE.
        Assert.Equal(1400, sock.Send(new byte[1400], 0, null));
        var pieces = link.Take();
        Assert.Equal(2, pieces.Count);
        Assert.All(pieces, f => Assert.True(IpPacket(f).Length <= 1000));
        sock.SetOption(0, 10, BitConverter.GetBytes(2));
        Assert.Equal(-90, sock.Send(new byte[1400], 0, null));
        // It survives a checkpoint, and expires.
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms)) stack.Save(w);
        var again = NewStack(_clock, Spec(), out _);
        using (var r = new BinaryReader(new MemoryStream(ms.ToArray()))) again.Load(r);
        Assert.Equal(1000, again.Ip.MtuFor(Peer));
        _clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(1500, again.Ip.MtuFor(Peer));
        // An MTU below 552 is taken as 552; one about a datagram we did not send is ignored.
        byte[] tiny = [3, 4, 0, 0, 0, 0, 0, 68, .. sent.AsSpan(0, 28)];
        BinaryPrimitives.WriteUInt16BigEndian(tiny.AsSpan(2), Checksum(tiny));
        again.ReceiveFrame(FromPeer(Ipv4(Ip("10.0.0.1"), Ours, 1, tiny)));
        Assert.Equal(552, again.Ip.MtuFor(Peer));
        var notOurs = Ipv4(Ip("10.0.0.5"), Ip("10.0.0.6"), 17, Udp(Ip("10.0.0.5"), 1, Ip("10.0.0.6"), 2, new byte[8]));
        byte[] spoof = [3, 4, 0, 0, 0, 0, 0x02, 0x40, .. notOurs.AsSpan(0, 28)];
        BinaryPrimitives.WriteUInt16BigEndian(spoof.AsSpan(2), Checksum(spoof));
        again.ReceiveFrame(FromPeer(Ipv4(Ip("10.0.0.1"), Ours, 1, spoof)));
        Assert.Equal(1500, again.Ip.MtuFor(Ip("10.0.0.6")));
    }

    [Fact]
    public void A_ttl_of_zero_is_dropped()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 1, IcmpEcho(1, 1, []), ttl: 0)));
        Assert.Empty(link.Take());
        Assert.Equal(1, stack.Stats.Drops(NetDrop.TtlExpired));
    }
}
