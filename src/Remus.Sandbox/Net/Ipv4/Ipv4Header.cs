using System.Buffers.Binary;

namespace Remus.Sandbox.Net.Ipv4;

/// <summary>The fields of an IPv4 header (RFC 791) the stack uses; options are skipped, never interpreted.</summary>
internal readonly struct Ipv4Header
{
    public const int MinLength = 20;
    public const ushort FlagDontFragment = 0x4000, FlagMoreFragments = 0x2000, OffsetMask = 0x1FFF;

    public int HeaderLength { get; init; }
    public int TotalLength { get; init; }
    public byte Tos { get; init; }
    public ushort Id { get; init; }
    public ushort FlagsOffset { get; init; }
    public byte Ttl { get; init; }
    public byte Protocol { get; init; }
    public IPv4Address Source { get; init; }
    public IPv4Address Destination { get; init; }

    public bool MoreFragments => (FlagsOffset & FlagMoreFragments) != 0;
    public int FragmentOffset => (FlagsOffset & OffsetMask) * 8;
    public bool IsFragment => MoreFragments || FragmentOffset != 0;

    /// <summary>Parses and checks a header: version 4, lengths consistent with <paramref name="packet"/>, checksum.</summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, out Ipv4Header header, out bool badChecksum)
    {
        header = default;
        badChecksum = false;
        if (packet.Length < MinLength || packet[0] >> 4 != 4) return false;
        int ihl = (packet[0] & 0xF) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (ihl < MinLength || total < ihl || total > packet.Length) return false;
        if (Checksum.Of(packet[..ihl]) != 0)
        {
            badChecksum = true;
            return false;
        }
        header = new Ipv4Header
        {
            HeaderLength = ihl,
            TotalLength = total,
            Tos = packet[1],
            Id = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]),
            FlagsOffset = BinaryPrimitives.ReadUInt16BigEndian(packet[6..]),
            Ttl = packet[8],
            Protocol = packet[9],
            Source = IPv4Address.Read(packet[12..]),
            Destination = IPv4Address.Read(packet[16..]),
        };
        return true;
    }

    /// <summary>Writes a 20-byte header (no options) with its checksum.</summary>
    public static void Write(Span<byte> b, int totalLength, byte tos, ushort id, ushort flagsOffset, byte ttl, byte protocol,
        IPv4Address source, IPv4Address destination)
    {
        b[0] = 0x45;
        b[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], id);
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], flagsOffset);
        b[8] = ttl;
        b[9] = protocol;
        b[10] = 0;
        b[11] = 0;
        source.Write(b[12..]);
        destination.Write(b[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], Checksum.Of(b[..MinLength]));
    }
}
