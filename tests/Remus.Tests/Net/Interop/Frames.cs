using System.Buffers.Binary;
using Remus.Sandbox.Net;

namespace Remus.Tests.Net.Interop;

/// <summary>What a test needs to see on the wire (a TCP segment's ports, flags and window) and to forge (a SYN).</summary>
internal static class Frames
{
    public const byte Fin = 1, Syn = 2, Rst = 4, Psh = 8, Ack = 16;

    /// <summary>A TCP segment in an Ethernet frame: its header fields, or null for anything else.</summary>
    public readonly record struct TcpInfo(IPv4Address Source, IPv4Address Destination, ushort SourcePort, ushort DestinationPort,
        uint Seq, uint AckNumber, byte Flags, ushort Window, int PayloadLength);

    public static TcpInfo? Tcp(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00) return null;
        var ip = frame[14..];
        int ihl = (ip[0] & 15) * 4;
        if (ip[9] != 6 || ip.Length < ihl + 20) return null;
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        var tcp = ip[ihl..];
        int dataOffset = (tcp[12] >> 4) * 4;
        return new TcpInfo(IPv4Address.Read(ip[12..]), IPv4Address.Read(ip[16..]),
            BinaryPrimitives.ReadUInt16BigEndian(tcp), BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]),
            tcp[13], BinaryPrimitives.ReadUInt16BigEndian(tcp[14..]), total - ihl - dataOffset);
    }

    /// <summary>
    /// Writes a SYN from <paramref name="src"/> (<paramref name="srcMac"/>) to <paramref name="dst"/> (<paramref name="dstMac"/>)
    /// with an MSS option, checksums right, into <paramref name="frame"/> (at least 58 bytes); returns its length.
    /// </summary>
    public static int WriteSyn(Span<byte> frame, MacAddress srcMac, MacAddress dstMac, NetEndpoint src, NetEndpoint dst, uint seq)
    {
        const int TcpLen = 24, IpLen = 20 + TcpLen;
        frame[..(14 + IpLen)].Clear();
        dstMac.Write(frame);
        srcMac.Write(frame[6..]);
        frame[12] = 0x08;
        var ip = frame[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], IpLen);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)seq);
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        src.Address.Write(ip[12..]);
        dst.Address.Write(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Of(ip[..20]));
        var tcp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, src.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], dst.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        tcp[12] = (TcpLen / 4) << 4;
        tcp[13] = Syn;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 64240);
        tcp[20] = 2; // MSS 1460
        tcp[21] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[22..], 1460);
        uint sum = Checksum.Add(Checksum.PseudoHeader(src.Address, dst.Address, 6, TcpLen), tcp[..TcpLen]);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum.Finish(sum));
        return 14 + IpLen;
    }
}
