using System.Buffers.Binary;

namespace Remus.Sandbox.Net;

/// <summary>
/// The domain's Ethernet II interface on the tap (IFF_NO_PI: a frame is the destination MAC first, no FCS): it keeps
/// frames for our MAC or broadcast (and multicast, which the layers above filter), and builds outbound frames in one
/// reused buffer so sending allocates nothing.
/// </summary>
internal sealed class Ethernet
{
    public const int HeaderLength = 14;
    public const ushort TypeIpv4 = 0x0800, TypeArp = 0x0806;
    public const int MaxFrame = HeaderLength + NetLimits.Mtu;

    private readonly byte[] _frame = new byte[MaxFrame];
    private readonly NetStats _stats;

    public Ethernet(MacAddress mac, NetStats stats)
    {
        Mac = mac;
        _stats = stats;
    }

    public MacAddress Mac { get; }
    public INetLink? Link { get; set; }

    /// <summary>Checks an inbound frame: its EtherType and payload if it is for us, else false (counted).</summary>
    public bool Accept(ReadOnlySpan<byte> frame, out ushort type, out ReadOnlySpan<byte> payload, out bool linkBroadcast)
    {
        _stats.FrameIn(frame.Length);
        type = 0;
        payload = default;
        linkBroadcast = false;
        if (frame.Length < HeaderLength)
        {
            _stats.Drop(NetDrop.Malformed);
            return false;
        }
        var destination = MacAddress.Read(frame);
        linkBroadcast = destination.IsMulticast; // broadcast is a multicast address too
        if (destination != Mac && !linkBroadcast)
        {
            _stats.Drop(NetDrop.NotForUs);
            return false;
        }
        type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        payload = frame[HeaderLength..];
        return true;
    }

    /// <summary>The payload area of the outbound frame buffer (valid until <see cref="Transmit"/>).</summary>
    public Span<byte> Payload => _frame.AsSpan(HeaderLength);

    /// <summary>Sends the frame whose payload (<paramref name="length"/> bytes) was written into <see cref="Payload"/>.</summary>
    public void Transmit(MacAddress destination, ushort type, int length)
    {
        if (Link is not { } link)
        {
            _stats.Drop(NetDrop.NoLink);
            return;
        }
        destination.Write(_frame);
        Mac.Write(_frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(_frame.AsSpan(12), type);
        int total = HeaderLength + length;
        _stats.FrameOut(total);
        link.SendFrame(_frame.AsSpan(0, total));
    }

    /// <summary>Sends <paramref name="payload"/> (not in <see cref="Payload"/>) in a frame.</summary>
    public void Transmit(MacAddress destination, ushort type, ReadOnlySpan<byte> payload)
    {
        payload.CopyTo(Payload);
        Transmit(destination, type, payload.Length);
    }
}
