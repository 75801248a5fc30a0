using System.Buffers.Binary;

namespace Remus.Sandbox.Net;

/// <summary>The Internet checksum (RFC 1071) over IPv4 headers, ICMP, UDP and TCP.</summary>
internal static class Checksum
{
    /// <summary>Adds <paramref name="data"/> to a running 32-bit sum of 16-bit big-endian words (odd tail padded with 0).</summary>
    public static uint Add(uint sum, ReadOnlySpan<byte> data)
    {
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) sum += (uint)data[i] << 8;
        // Fold now and then so long data cannot overflow.
        return (sum & 0xFFFF) + (sum >> 16);
    }

    /// <summary>The TCP/UDP pseudo-header's sum: source, destination, protocol and transport length.</summary>
    public static uint PseudoHeader(IPv4Address source, IPv4Address destination, byte protocol, int length) =>
        (source.Value >> 16) + (source.Value & 0xFFFF) + (destination.Value >> 16) + (destination.Value & 0xFFFF) + protocol + (uint)length;

    /// <summary>Folds a running sum into the 16-bit one's-complement checksum to store.</summary>
    public static ushort Finish(uint sum)
    {
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>The checksum of <paramref name="data"/> alone (an IPv4 header, an ICMP message).</summary>
    public static ushort Of(ReadOnlySpan<byte> data) => Finish(Add(0, data));
}
