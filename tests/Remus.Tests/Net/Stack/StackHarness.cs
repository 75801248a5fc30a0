using System.Buffers.Binary;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Xunit;

namespace Remus.Tests.Net.Stack;

/// <summary>A clock the test moves by hand (guest monotonic ns).</summary>
internal sealed class ManualClock
{
    public long Now { get; set; } = 1_000_000_000;
    public void Advance(TimeSpan t) => Now += (long)(t.TotalMilliseconds * 1_000_000);
}

/// <summary>A link that keeps every frame the stack sends (copied: the stack reuses its buffer).</summary>
internal sealed class CaptureLink : INetLink
{
    public List<byte[]> Frames { get; } = [];
    public void SendFrame(ReadOnlySpan<byte> frame) => Frames.Add(frame.ToArray());

    public List<byte[]> Take()
    {
        var f = Frames.ToList();
        Frames.Clear();
        return f;
    }
}

/// <summary>A TCP stand-in (the real one is net-tcp's): no sockets, an empty snapshot.</summary>
internal sealed class NoTcp : ITransportProtocol
{
    public byte Protocol => 6;
    public List<byte[]> Received { get; } = [];
    public void Receive(IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> segment, byte tos) => Received.Add(segment.ToArray());
    public void IcmpError(int type, int code, IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> original, int nextHopMtu) { }
    public long NextDeadlineNs => long.MaxValue;
    public void RunTimers(long nowNs) { }
    public long CreateSocket(int id, out IInetSocket? socket) { socket = null; return -95; }
    public IInetSocket? SocketById(int id) => null;
    public void Save(BinaryWriter w) => w.Write((byte)0x7C);
    public void Load(BinaryReader r) => Assert.Equal(0x7C, r.ReadByte());
}

/// <summary>
/// Two or more stacks on one fake Ethernet segment: frames are queued (as a tap would) and delivered by <see cref="Pump"/>,
/// never inside the sender's call. <see cref="Filter"/> may drop or rewrite frames in flight.
/// </summary>
internal sealed class FakeSegment
{
    private readonly List<NetStack> _stacks = [];
    private readonly Queue<(NetStack From, byte[] Frame)> _inFlight = new();

    public Func<byte[], bool>? Filter { get; set; }
    public List<byte[]> Seen { get; } = [];

    public void Attach(NetStack stack)
    {
        _stacks.Add(stack);
        stack.AttachLink(new Port(this, stack));
    }

    public void Replace(NetStack old, NetStack replacement)
    {
        _stacks[_stacks.IndexOf(old)] = replacement;
        replacement.AttachLink(new Port(this, replacement));
    }

    /// <summary>Delivers frames until none is in flight; the number delivered.</summary>
    public int Pump(int max = 100_000)
    {
        int n = 0;
        while (n < max && _inFlight.TryDequeue(out var f))
        {
            n++;
            foreach (var s in _stacks)
                if (s != f.From) s.ReceiveFrame(f.Frame);
        }
        return n;
    }

    private sealed class Port(FakeSegment segment, NetStack stack) : INetLink
    {
        public void SendFrame(ReadOnlySpan<byte> frame)
        {
            var copy = frame.ToArray();
            segment.Seen.Add(copy);
            if (segment.Filter is { } f && !f(copy)) return;
            segment._inFlight.Enqueue((stack, copy));
        }
    }
}

/// <summary>Builds and reads the frames the tests feed and check.</summary>
internal static class Frames
{
    public static readonly MacAddress PeerMac = new(0x02_00_00_00_00_99), OurMac = new(0x02_52_4d_00_00_02);
    public static readonly IPv4Address Ours = Ip("10.0.0.2"), Peer = Ip("10.0.0.9"), Gateway = Ip("10.0.0.1");

    public static IPv4Address Ip(string s) => IPv4Address.TryParse(s, out var a) ? a : throw new ArgumentException(s);

    public static NetworkSpec Spec(string address = "10.0.0.2", string mac = "02:52:4d:00:00:02", string? gateway = null) => new()
    {
        Tap = "t",
        Address = Ip(address),
        PrefixLength = 24,
        Gateway = gateway is null ? null : Ip(gateway),
        Mac = MacAddress.TryParse(mac, out var m) ? m : throw new ArgumentException(mac),
    };

    public static NetStack NewStack(ManualClock clock, NetworkSpec? spec, out CaptureLink link)
    {
        var s = new NetStack(() => clock.Now, spec, _ => new NoTcp());
        link = new CaptureLink();
        s.AttachLink(link);
        return s;
    }

    public static byte[] Ethernet(MacAddress dst, MacAddress src, ushort type, ReadOnlySpan<byte> payload)
    {
        var f = new byte[14 + payload.Length];
        dst.Write(f);
        src.Write(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        payload.CopyTo(f.AsSpan(14));
        return f;
    }

    public static byte[] Arp(ushort op, MacAddress senderMac, IPv4Address senderIp, MacAddress targetMac, IPv4Address targetIp)
    {
        var p = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(p, 1);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), 0x0800);
        p[4] = 6; p[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), op);
        senderMac.Write(p.AsSpan(8));
        senderIp.Write(p.AsSpan(14));
        targetMac.Write(p.AsSpan(18));
        targetIp.Write(p.AsSpan(24));
        return p;
    }

    /// <summary>An IPv4 packet (20-byte header, correct checksum unless <paramref name="badChecksum"/>).</summary>
    public static byte[] Ipv4(IPv4Address src, IPv4Address dst, byte protocol, ReadOnlySpan<byte> payload, ushort id = 1,
        ushort flagsOffset = 0, byte ttl = 64, bool badChecksum = false)
    {
        var p = new byte[20 + payload.Length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), flagsOffset);
        p[8] = ttl;
        p[9] = protocol;
        src.Write(p.AsSpan(12));
        dst.Write(p.AsSpan(16));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), (ushort)(Checksum(p.AsSpan(0, 20)) ^ (badChecksum ? 1 : 0)));
        payload.CopyTo(p.AsSpan(20));
        return p;
    }

    public static byte[] Udp(IPv4Address src, ushort sport, IPv4Address dst, ushort dport, ReadOnlySpan<byte> data, bool zeroChecksum = false)
    {
        var u = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(u, sport);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(4), (ushort)u.Length);
        data.CopyTo(u.AsSpan(8));
        if (!zeroChecksum)
        {
            var pseudo = new byte[12 + u.Length];
            src.Write(pseudo);
            dst.Write(pseudo.AsSpan(4));
            pseudo[9] = 17;
            BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)u.Length);
            u.CopyTo(pseudo.AsSpan(12));
            ushort c = Checksum(pseudo);
            BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(6), c == 0 ? (ushort)0xFFFF : c);
        }
        return u;
    }

    public static byte[] IcmpEcho(ushort id, ushort seq, ReadOnlySpan<byte> data, byte type = 8)
    {
        var m = new byte[8 + data.Length];
        m[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), seq);
        data.CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), Checksum(m));
        return m;
    }

    /// <summary>RFC 1071, written out again here so the tests do not trust the code under test.</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i += 2)
            sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>The frame for our stack from the peer carrying an IPv4 packet.</summary>
    public static byte[] FromPeer(byte[] ipPacket, MacAddress? to = null) =>
        Ethernet(to ?? OurMac, PeerMac, 0x0800, ipPacket);

    /// <summary>Tells the stack the peer's MAC (the peer asks for our address; the stack answers and learns it).</summary>
    public static void Introduce(NetStack stack, CaptureLink link, IPv4Address? peer = null, MacAddress? peerMac = null)
    {
        stack.ReceiveFrame(Ethernet(MacAddress.Broadcast, peerMac ?? PeerMac, 0x0806,
            Arp(1, peerMac ?? PeerMac, peer ?? Peer, default, stack.Spec!.Address)));
        link.Take();
    }

    public static ushort EtherType(byte[] f) => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12));
    public static ReadOnlySpan<byte> Payload(byte[] f) => f.AsSpan(14);

    /// <summary>Checks a frame's IPv4 header (version, length, checksum) and returns the packet.</summary>
    public static byte[] IpPacket(byte[] frame)
    {
        Assert.Equal(0x0800, EtherType(frame));
        var p = frame.AsSpan(14).ToArray();
        Assert.Equal(0x45, p[0]);
        Assert.Equal(p.Length, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(2)));
        Assert.Equal(0, Checksum(p.AsSpan(0, 20)));
        return p;
    }

    public static IPv4Address Src(byte[] ip) => IPv4Address.Read(ip.AsSpan(12));
    public static IPv4Address Dst(byte[] ip) => IPv4Address.Read(ip.AsSpan(16));

    public static (IInetSocket Socket, long Result) Udp(NetStack s)
    {
        long r = s.CreateSocket(2, 0, out var sock);
        return (sock!, r);
    }

    public static IInetSocket UdpBound(NetStack s, string address, ushort port)
    {
        Assert.Equal(0, s.CreateSocket(2, 0, out var sock));
        Assert.Equal(0, sock!.Bind(new NetEndpoint(Ip(address), port)));
        return sock;
    }

    public static (long Result, byte[] Data, NetEndpoint From) Recv(IInetSocket s, int size = 65536, int flags = 0)
    {
        var buf = new byte[size];
        long r = s.Receive(buf, flags, out var from, out _);
        return (r, r > 0 ? buf[..(int)r] : [], from);
    }
}
