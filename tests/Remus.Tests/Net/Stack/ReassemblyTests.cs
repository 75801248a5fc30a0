using Remus.Sandbox.Net;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>Fragment reassembly: in order, out of order, duplicates, overlaps, the timeout and the limits.</summary>
public sealed class ReassemblyTests
{
    private readonly ManualClock _clock = new();

    private static byte[] Data(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 7 + 3)).ToArray();

    /// <summary>A UDP datagram to our port 4000 cut into IPv4 fragments of <paramref name="chunk"/> bytes (a multiple of 8).</summary>
    private static List<byte[]> Fragments(byte[] data, int chunk, ushort id = 42)
    {
        var udp = Udp(Peer, 5000, Ours, 4000, data);
        var frames = new List<byte[]>();
        for (int off = 0; off < udp.Length; off += chunk)
        {
            int n = Math.Min(chunk, udp.Length - off);
            bool more = off + n < udp.Length;
            frames.Add(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(off, n), id, (ushort)((more ? 0x2000 : 0) | off / 8))));
        }
        return frames;
    }

    private (NetStack Stack, CaptureLink Link, Remus.Sandbox.Net.Sockets.IInetSocket Socket) Setup()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        return (stack, link, UdpBound(stack, "0.0.0.0", 4000));
    }

    [Fact]
    public void Fragments_in_order_make_the_datagram()
    {
        var (stack, _, sock) = Setup();
        var data = Data(3000);
        var frags = Fragments(data, 1480);
        Assert.Equal(3, frags.Count);
        foreach (var f in frags) stack.ReceiveFrame(f);
        var (r, got, from) = Recv(sock);
        Assert.Equal(3000, r);
        Assert.Equal(data, got);
        Assert.Equal(new NetEndpoint(Peer, 5000), from);
        Assert.Equal(0, stack.Ip.Reassembly.Count);
        Assert.Equal(0, stack.Ip.Reassembly.Bytes);
    }

    [Fact]
    public void Fragments_out_of_order_and_duplicated_make_the_datagram()
    {
        var (stack, _, sock) = Setup();
        var data = Data(5000);
        var frags = Fragments(data, 808);
        foreach (int i in new[] { 3, 0, 5, 3, 6, 1, 4, 2 }) stack.ReceiveFrame(frags[i]);
        Assert.Equal(data, Recv(sock).Data);
        Assert.Equal(-11, Recv(sock).Result); // one datagram, not two
    }

    [Fact]
    public void An_overlapping_fragment_discards_the_whole_datagram()
    {
        var (stack, _, sock) = Setup();
        var data = Data(3000);
        var udp = Udp(Peer, 5000, Ours, 4000, data);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(0, 1480), 9, 0x2000)));
        // Covers 1472..2960: overlaps the first by 8 bytes.
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(1472, 1488), 9, 0x2000 | 1472 / 8)));
        Assert.Equal(0, stack.Ip.Reassembly.Count);
        Assert.Equal(1, stack.Stats.Drops(NetDrop.ReassemblyOverlap));
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(2960), 9, 2960 / 8)));
        Assert.Equal(-11, Recv(sock).Result);
    }

    [Fact]
    public void An_incomplete_datagram_times_out_after_30_seconds_with_time_exceeded()
    {
        var (stack, link, sock) = Setup();
        var frags = Fragments(Data(3000), 1480);
        stack.ReceiveFrame(frags[0]);
        stack.ReceiveFrame(frags[1]);
        Assert.Equal(1, stack.Ip.Reassembly.Count);
        Assert.Equal(_clock.Now + 30_000_000_000, stack.NextDeadlineNs);
        _clock.Advance(TimeSpan.FromSeconds(29.9));
        stack.RunTimers();
        Assert.Equal(1, stack.Ip.Reassembly.Count);
        _clock.Advance(TimeSpan.FromSeconds(0.1));
        stack.RunTimers();
        Assert.Equal(0, stack.Ip.Reassembly.Count);
        var p = IpPacket(Assert.Single(link.Take()));
        Assert.Equal((11, 1), (p[20], p[21])); // time exceeded: fragment reassembly
        stack.ReceiveFrame(frags[2]); // the last, too late: a new, incomplete datagram
        Assert.Equal(-11, Recv(sock).Result);
    }

    [Fact]
    public void A_flood_of_fragments_holds_bounded_memory()
    {
        var (stack, _, _) = Setup();
        var piece = Data(1480);
        for (int i = 0; i < 20_000; i++)
            stack.ReceiveFrame(FromPeer(Ipv4(new IPv4Address(Peer.Value + (uint)(i & 3)), Ours, 17, piece, (ushort)i, (ushort)(0x2000 | (i % 40) * 185))));
        Assert.True(stack.Ip.Reassembly.Count <= NetLimits.ReassemblyMaxDatagrams);
        Assert.True(stack.Ip.Reassembly.Bytes <= NetLimits.ReassemblyMaxBytes);
        Assert.True(stack.Stats.Drops(NetDrop.ReassemblyLimit) > 0);
        // Many fragments of one datagram: at most ReassemblyMaxFragments are kept.
        var (stack2, _, _) = Setup();
        var eight = Data(8);
        for (int i = 0; i < 5000; i++)
            stack2.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, eight, 1, (ushort)(0x2000 | (i * 2)))));
        Assert.True(stack2.Ip.Reassembly.Bytes <= NetLimits.ReassemblyMaxFragments * (8 + NetLimits.FragmentOverhead));
    }

    [Fact]
    public void A_datagram_longer_than_65535_bytes_is_discarded()
    {
        var (stack, _, _) = Setup();
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Data(1000), 5, (ushort)(0x2000 | 0))));
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Data(1000), 5, 8100))); // 64800 + 1000 + 20 > 65535
        Assert.Equal(1, stack.Stats.Drops(NetDrop.Malformed));
    }
}
