using System.Buffers.Binary;
using Remus.Sandbox.Net;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>ARP at the frame level: replies, gratuitous ARP, resolution with a bounded queue and retries, and the cache's bound.</summary>
public sealed class ArpTests
{
    private readonly ManualClock _clock = new();

    [Fact]
    public void A_request_for_our_address_gets_a_reply_to_the_asker()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        stack.ReceiveFrame(Ethernet(MacAddress.Broadcast, PeerMac, 0x0806, Arp(1, PeerMac, Peer, default, Ours)));
        var f = Assert.Single(link.Take());
        Assert.Equal(PeerMac, MacAddress.Read(f));
        Assert.Equal(OurMac, MacAddress.Read(f.AsSpan(6)));
        Assert.Equal(0x0806, EtherType(f));
        Assert.Equal(Arp(2, OurMac, Ours, PeerMac, Peer), Payload(f)[..28].ToArray());
    }

    [Fact]
    public void Requests_for_other_addresses_and_frames_for_other_macs_are_ignored()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        stack.ReceiveFrame(Ethernet(MacAddress.Broadcast, PeerMac, 0x0806, Arp(1, PeerMac, Peer, default, Ip("10.0.0.77"))));
        stack.ReceiveFrame(Ethernet(new MacAddress(0x02_11_11_11_11_11), PeerMac, 0x0806, Arp(1, PeerMac, Peer, default, Ours)));
        Assert.Empty(link.Frames);
        Assert.Equal(2, stack.Stats.Drops(NetDrop.NotForUs));
        Assert.Equal(0, stack.Ip.Arp!.Count);
    }

    [Fact]
    public void An_address_probe_for_our_address_is_answered_and_teaches_nothing()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        stack.ReceiveFrame(Ethernet(MacAddress.Broadcast, PeerMac, 0x0806, Arp(1, PeerMac, IPv4Address.Any, default, Ours)));
        var f = Assert.Single(link.Take());
        Assert.Equal(PeerMac, MacAddress.Read(f));
        Assert.Equal(Arp(2, OurMac, Ours, PeerMac, IPv4Address.Any), Payload(f)[..28].ToArray());
        Assert.Equal(0, stack.Ip.Arp!.Count);
    }

    [Fact]
    public void Gratuitous_arp_is_a_broadcast_request_for_our_own_address_sent_twice()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        stack.AnnounceAddress();
        var f = Assert.Single(link.Take());
        Assert.Equal(MacAddress.Broadcast, MacAddress.Read(f));
        Assert.Equal(Arp(1, OurMac, Ours, default, Ours), Payload(f)[..28].ToArray());
        Assert.Equal(_clock.Now + 1_000_000_000, stack.NextDeadlineNs);
        _clock.Advance(TimeSpan.FromSeconds(1));
        stack.RunTimers();
        f = Assert.Single(link.Take());
        Assert.Equal(Arp(1, OurMac, Ours, default, Ours), Payload(f)[..28].ToArray());
        Assert.Equal(long.MaxValue, stack.NextDeadlineNs);
    }

    [Fact]
    public void Datagrams_to_an_unknown_neighbour_wait_for_the_reply_and_the_newest_that_fit_are_sent()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        int moved = 0;
        stack.DeadlineMoved = () => moved++;
        var (sock, _) = Udp(stack);
        var data = new byte[1000];
        for (int i = 0; i < 300; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)i);
            Assert.Equal(1000, sock.Send(data, 0, new NetEndpoint(Peer, 7)));
        }
        var asked = Assert.Single(link.Take()); // one request however many datagrams wait
        Assert.Equal(MacAddress.Broadcast, MacAddress.Read(asked));
        Assert.Equal(Arp(1, OurMac, Ours, default, Peer), Payload(asked)[..28].ToArray());
        Assert.True(moved > 0, "the retry timer was armed without telling the timer thread");
        // Each is charged 20 + 8 + 1000 bytes and the overhead: what fits in unres_qlen_bytes stays, the oldest go.
        int kept = NetLimits.ArpQueueBytesPerNeighbour / (1028 + NetLimits.DatagramOverhead);
        Assert.Equal(300 - kept, stack.Stats.Drops(NetDrop.ArpQueueFull));

        stack.ReceiveFrame(Ethernet(OurMac, PeerMac, 0x0806, Arp(2, PeerMac, Peer, OurMac, Ours)));
        var sent = link.Take();
        Assert.Equal(Enumerable.Range(300 - kept, kept).ToArray(), sent.Select(f => (int)BinaryPrimitives.ReadUInt16BigEndian(IpPacket(f).AsSpan(28))).ToArray());
        Assert.All(sent, f => Assert.Equal(PeerMac, MacAddress.Read(f)));
        Assert.Equal(0, stack.Ip.Arp!.PendingBytes);
        // Resolved: the next goes straight out.
        sock.Send([9], 0, new NetEndpoint(Peer, 7));
        Assert.Equal(9, IpPacket(Assert.Single(link.Take()))[28]);
    }

    [Fact]
    public void An_unanswered_neighbour_is_asked_three_times_then_given_up()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        var (sock, _) = Udp(stack);
        sock.Send([1], 0, new NetEndpoint(Peer, 7));
        Assert.Single(link.Take());
        for (int i = 0; i < 2; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            stack.RunTimers();
            Assert.Equal(Arp(1, OurMac, Ours, default, Peer), Payload(Assert.Single(link.Take()))[..28].ToArray());
        }
        _clock.Advance(TimeSpan.FromSeconds(1));
        stack.RunTimers();
        Assert.Empty(link.Take());
        Assert.Equal(1, stack.Stats.Drops(NetDrop.ArpUnresolved));
        Assert.Equal(0, stack.Ip.Arp!.Count);
        Assert.Equal(long.MaxValue, stack.NextDeadlineNs);
    }

    [Fact]
    public void A_stale_entry_is_probed_by_unicast_after_the_delay_and_dropped_unanswered()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link); // learned STALE from the peer's request
        var (sock, _) = Udp(stack);
        sock.Send([1], 0, new NetEndpoint(Peer, 7));
        Assert.Single(link.Take()); // sent at once to the known MAC; DELAY starts
        _clock.Advance(TimeSpan.FromSeconds(5));
        stack.RunTimers();
        var probe = Assert.Single(link.Take());
        Assert.Equal(PeerMac, MacAddress.Read(probe)); // unicast
        Assert.Equal(Arp(1, OurMac, Ours, PeerMac, Peer), Payload(probe)[..28].ToArray());
        _clock.Advance(TimeSpan.FromSeconds(1)); stack.RunTimers();
        _clock.Advance(TimeSpan.FromSeconds(1)); stack.RunTimers();
        Assert.Equal(2, link.Take().Count);
        _clock.Advance(TimeSpan.FromSeconds(1)); stack.RunTimers();
        Assert.Equal(0, stack.Ip.Arp!.Count);
    }

    [Fact]
    public void A_flood_of_requests_from_new_addresses_keeps_the_cache_bounded()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        for (int i = 0; i < 20_000; i++)
        {
            var ip = new IPv4Address(0x0A100000u + (uint)i);
            var mac = new MacAddress(0x02_00_00_00_00_00UL | (uint)i);
            stack.ReceiveFrame(Ethernet(MacAddress.Broadcast, mac, 0x0806, Arp(1, mac, ip, default, Ours)));
        }
        Assert.True(stack.Ip.Arp!.Count <= NetLimits.ArpMaxEntries, $"{stack.Ip.Arp.Count} entries");
        Assert.Equal(20_000, link.Take().Count); // each one answered
    }

    [Fact]
    public void Datagrams_to_many_unresolved_neighbours_hold_bounded_memory()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        var (sock, _) = Udp(stack);
        var big = new byte[1400];
        for (int i = 0; i < 5000; i++)
            sock.Send(big, 0, new NetEndpoint(new IPv4Address(0x0A000000u | (uint)(i % 250 + 3)), 7));
        Assert.True(stack.Ip.Arp!.Count <= NetLimits.ArpMaxEntries);
        Assert.True(stack.Ip.Arp.PendingBytes <= NetLimits.ArpQueueBytes, $"{stack.Ip.Arp.PendingBytes} bytes held");
        Assert.Equal(250, link.Take().Count); // one request per neighbour, not one per datagram
    }
}
