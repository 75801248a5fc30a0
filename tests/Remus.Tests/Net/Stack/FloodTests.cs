using Remus.Sandbox.Net;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>
/// Whatever arrives on the tap, the stack neither throws (an exception would take the VMM's frame pump down) nor
/// holds more than its limits: random bytes, and valid frames of every kind with bytes flipped, truncated or padded.
/// </summary>
public sealed class FloodTests
{
    private readonly ManualClock _clock = new();

    private static IEnumerable<byte[]> Seeds()
    {
        var tcpSyn = new byte[20];
        tcpSyn[1] = 80; tcpSyn[3] = 80; tcpSyn[12] = 0x50; tcpSyn[13] = 0x02; tcpSyn[14] = 0xFF;
        yield return Ethernet(MacAddress.Broadcast, PeerMac, 0x0806, Arp(1, PeerMac, Peer, default, Ours));
        yield return Ethernet(OurMac, PeerMac, 0x0806, Arp(2, PeerMac, Peer, OurMac, Ours));
        yield return FromPeer(Ipv4(Peer, Ours, 1, IcmpEcho(1, 2, new byte[40])));
        yield return FromPeer(Ipv4(Peer, Ours, 1, [3, 3, 0, 0, 0, 0, 0, 0, .. Ipv4(Ours, Peer, 17, Udp(Ours, 53, Peer, 9, "x"u8))]));
        yield return FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 1000, Ours, 53, new byte[100])));
        yield return FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 1000, Ours, 9, new byte[100])));
        yield return FromPeer(Ipv4(Peer, Ours, 17, new byte[200], 7, 0x2000));
        yield return FromPeer(Ipv4(Peer, Ours, 17, new byte[200], 7, 25));
        yield return FromPeer(Ipv4(Peer, Ours, 6, tcpSyn));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_and_mangled_frames_never_throw_and_hold_bounded_state(bool realTcp)
    {
        var stack = realTcp ? new NetStack(() => _clock.Now, Spec()) : NewStack(_clock, Spec(), out _);
        var link = new CaptureLink();
        stack.AttachLink(link);
        var server = UdpBound(stack, "0.0.0.0", 53);
        if (realTcp)
        {
            Assert.Equal(0, stack.CreateSocket(1, 0, out var l));
            l!.Bind(new NetEndpoint(IPv4Address.Any, 80));
            l.Listen(128);
        }
        var seeds = Seeds().ToList();
        var rng = new Random(11);
        for (int i = 0; i < 200_000; i++)
        {
            byte[] f;
            if (i % 10 == 0)
            {
                f = new byte[rng.Next(0, 1600)];
                rng.NextBytes(f);
            }
            else
            {
                var seed = seeds[rng.Next(seeds.Count)];
                f = seed.ToArray();
                int flips = rng.Next(0, 4);
                for (int k = 0; k < flips; k++) f[rng.Next(14, f.Length)] = (byte)rng.Next(256);
                if (rng.Next(8) == 0) f = f[..rng.Next(f.Length + 1)];
                else if (rng.Next(8) == 0) f = [.. f, .. new byte[rng.Next(100)]];
            }
            stack.ReceiveFrame(f);
            if (i % 1000 == 0)
            {
                _clock.Advance(TimeSpan.FromMilliseconds(100));
                stack.RunTimers();
                link.Frames.Clear();
            }
        }
        Assert.True(stack.Ip.Reassembly.Count <= NetLimits.ReassemblyMaxDatagrams);
        Assert.True(stack.Ip.Reassembly.Bytes <= NetLimits.ReassemblyMaxBytes);
        Assert.True(stack.Ip.Arp!.Count <= NetLimits.ArpMaxEntries);
        Assert.True(stack.Ip.Arp.PendingBytes <= NetLimits.ArpQueueBytes);
        Assert.True(stack.Udp.MemoryCharged <= NetLimits.UdpMemory);
        Assert.True(stack.Stats.FramesIn == 200_000);
        // Still working afterwards.
        var client = Udp(stack).Socket;
        while (Recv(server).Result > 0) { }
        Assert.Equal(2, client.Send("ok"u8, 0, new NetEndpoint(IPv4Address.Loopback, 53)));
        Assert.Equal("ok"u8.ToArray(), Recv(server).Data);
    }
}
