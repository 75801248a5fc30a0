using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Remus.Sandbox.Net;

/// <summary>The Internet checksum (RFC 1071) over IPv4 headers, ICMP, UDP and TCP.</summary>
internal static class Checksum
{
    /// <summary>Adds <paramref name="data"/> to a running 32-bit sum of 16-bit big-endian words (odd tail padded with 0).</summary>
    /// <remarks>
    /// The one's-complement sum does not depend on byte order (RFC 1071 §2(B)): the words are summed as the machine
    /// reads them, eight bytes at a time into a 64-bit accumulator, and the folded result is swapped to big-endian
    /// once at the end. Several times faster than word by word, which bulk TCP feels.
    /// </remarks>
    public static uint Add(uint sum, ReadOnlySpan<byte> data)
    {
        ulong acc = 0;
        int i = 0;
        var longs = MemoryMarshal.Cast<byte, ulong>(data);
        for (int k = 0; k < longs.Length; k++)
        {
            ulong w = longs[k];
            acc += (w & 0xFFFFFFFF) + (w >> 32);
        }
        i = longs.Length * 8;
        for (; i + 1 < data.Length; i += 2) acc += MemoryMarshal.Read<ushort>(data[i..]);
        if (i < data.Length) acc += BitConverter.IsLittleEndian ? data[i] : (ulong)data[i] << 8;
        while (acc >> 16 != 0) acc = (acc & 0xFFFF) + (acc >> 16);
        uint folded = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness((ushort)acc) : (ushort)acc;
        sum += folded;
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
