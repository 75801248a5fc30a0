using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>The stack's checkpoint: a stack loaded from it goes on exactly as the saved one would.</summary>
public sealed class SnapshotTests
{
    private readonly ManualClock _clock = new();

    private NetStack Make(string address, string mac) => new(() => _clock.Now, Spec(address, mac), _ => new NoTcp());

    private static byte[] Save(NetStack s, bool full = false)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms)) s.Save(w, full);
        return ms.ToArray();
    }

    private static void Load(NetStack s, byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        s.Load(r);
        Assert.Equal(bytes.Length, r.BaseStream.Position);
    }

    /// <summary>A checkpoint from the caches equals one re-serializing everything (taken second: it refreshes the caches).</summary>
    private static void AssertCacheCurrent(NetStack s)
    {
        var cached = Save(s);
        Assert.Equal(Save(s, full: true), cached);
    }

    [Fact]
    public void A_stack_saved_mid_conversation_and_loaded_into_a_new_one_goes_on()
    {
        var wire = new FakeSegment();
        var a = Make("10.0.0.1", "02:52:4d:00:00:01");
        var b = Make("10.0.0.2", "02:52:4d:00:00:02");
        wire.Attach(a);
        wire.Attach(b);
        var server = UdpBound(b, "0.0.0.0", 7);
        Assert.Equal(0, server.SetOption(0, 1, BitConverter.GetBytes(0x20)));
        var client = UdpBound(a, "0.0.0.0", 40000);
        client.Send("one"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 7));
        client.Send("two"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 7));
        wire.Pump();
        Assert.Equal("one"u8.ToArray(), Recv(server).Data); // "two" is still queued when the checkpoint is taken

        var image = Save(b);
        var b2 = Make("10.0.0.2", "02:52:4d:00:00:02");
        Load(b2, image);
        wire.Replace(b, b2);
        var restored = b2.SocketById(server.Id)!;
        Assert.Equal(new NetEndpoint(IPv4Address.Any, 7), restored.LocalEndpoint);
        Assert.Equal("two"u8.ToArray(), Recv(restored).Data);
        var tos = new byte[4];
        restored.GetOption(0, 1, tos);
        Assert.Equal(0x20, tos[0]);

        // It still knows its neighbour: the reply goes out with no ARP request first.
        wire.Seen.Clear();
        Assert.Equal(5, restored.Send("three"u8, 0, new NetEndpoint(Ip("10.0.0.1"), 40000)));
        wire.Pump();
        Assert.Equal("three"u8.ToArray(), Recv(client).Data);
        Assert.DoesNotContain(wire.Seen, f => EtherType(f) == 0x0806);
        // A new socket gets an id the saved stack had not used, and the port is still taken.
        Assert.Equal(0, b2.CreateSocket(2, 0, out var fresh));
        Assert.True(fresh!.Id > server.Id);
        Assert.Equal(-98, fresh.Bind(new NetEndpoint(IPv4Address.Any, 7)));
        // And the restored stack saves what it loaded, then what changed.
        client.Send("four"u8, 0, new NetEndpoint(Ip("10.0.0.2"), 7));
        wire.Pump();
        AssertCacheCurrent(b2);
    }

    [Fact]
    public void Cached_socket_state_always_equals_a_full_reserialization()
    {
        var stack = NewStack(_clock, null, out _);
        var sockets = Enumerable.Range(0, 6).Select(_ => Udp(stack).Socket).ToList();
        var rng = new Random(7);
        var buf = new byte[100];
        for (int step = 0; step < 400; step++)
        {
            var s = sockets[rng.Next(sockets.Count)];
            switch (rng.Next(9))
            {
                case 0: s.Bind(new NetEndpoint(IPv4Address.Loopback, (ushort)(5000 + rng.Next(4)))); break;
                case 1: s.Send(buf.AsSpan(0, rng.Next(1, 100)), 0, new NetEndpoint(IPv4Address.Loopback, (ushort)(5000 + rng.Next(4)))); break;
                case 2: s.Receive(buf, rng.Next(2) * 2, out _, out _); break;
                case 3: s.Connect(new NetEndpoint(IPv4Address.Loopback, (ushort)(5000 + rng.Next(6)))); break;
                case 4: s.Connect(default, disconnect: true); break;
                case 5: s.SetOption(rng.Next(2), new[] { 1, 2, 6, 8, 9, 12 }[rng.Next(6)], BitConverter.GetBytes(rng.Next(1, 300))); break;
                case 6: s.TakeError(); break;
                case 7: s.Shutdown(rng.Next(3)); break;
                case 8:
                    if (rng.Next(4) == 0)
                    {
                        s.Close();
                        sockets.Remove(s);
                        sockets.Add(Udp(stack).Socket);
                    }
                    break;
            }
            if (step % 10 == 0) AssertCacheCurrent(stack);
        }
    }

    [Fact]
    public void Fragments_held_at_the_checkpoint_complete_after_the_restore()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        var sock = UdpBound(stack, "0.0.0.0", 4000);
        var data = Enumerable.Range(0, 2000).Select(i => (byte)i).ToArray();
        var udp = Udp(Peer, 5000, Ours, 4000, data);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(0, 1480), 3, 0x2000)));
        var image = Save(stack);

        var again = NewStack(_clock, Spec(), out var link2);
        Load(again, image);
        Assert.Equal(1, again.Ip.Reassembly.Count);
        Assert.Equal(stack.NextDeadlineNs, again.NextDeadlineNs);
        again.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, udp.AsSpan(1480), 3, 1480 / 8)));
        Assert.Equal(data, Recv(again.SocketById(sock.Id)!).Data);
        Assert.Empty(link2.Frames);
        AssertCacheCurrent(again);
    }

    [Fact]
    public void A_resolution_in_progress_goes_on_after_the_restore()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        var sock = UdpBound(stack, "0.0.0.0", 4000);
        sock.Send("held"u8, 0, new NetEndpoint(Peer, 7));
        Assert.Single(link.Take()); // the first request
        var image = Save(stack);

        var again = NewStack(_clock, Spec(), out var link2);
        Load(again, image);
        Assert.Equal(stack.NextDeadlineNs, again.NextDeadlineNs);
        _clock.Advance(TimeSpan.FromSeconds(1));
        again.RunTimers();
        Assert.Equal(Arp(1, OurMac, Ours, default, Peer), Payload(Assert.Single(link2.Take()))[..28].ToArray()); // the retry
        again.ReceiveFrame(Ethernet(OurMac, PeerMac, 0x0806, Arp(2, PeerMac, Peer, OurMac, Ours)));
        var p = IpPacket(Assert.Single(link2.Take()));
        Assert.Equal("held"u8.ToArray(), p.AsSpan(28).ToArray());
        Assert.Equal(Peer, Dst(p));
    }

    [Fact]
    public void Save_load_save_is_identical_and_an_unknown_version_is_refused()
    {
        var stack = NewStack(_clock, Spec(), out var link);
        Introduce(stack, link);
        stack.AnnounceAddress();
        var s = UdpBound(stack, "10.0.0.2", 53);
        s.Connect(new NetEndpoint(Peer, 5353));
        s.Send("q"u8, 0, null);
        stack.ReceiveFrame(FromPeer(Ipv4(Peer, Ours, 17, Udp(Peer, 5353, Ours, 53, "answer"u8))));
        var image = Save(stack);
        var copy = NewStack(_clock, Spec(), out _);
        Load(copy, image);
        Assert.Equal(image, Save(copy));
        Assert.Equal(stack.NextDeadlineNs, copy.NextDeadlineNs);
        image[0] = 9;
        Assert.Throws<InvalidDataException>(() => Load(NewStack(_clock, Spec(), out _), image));
    }
}
