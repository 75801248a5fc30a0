using System.Buffers.Binary;

namespace Remus.Sandbox.Net.Arp;

/// <summary>An ARP packet for IPv4 over Ethernet (RFC 826): 28 bytes.</summary>
internal readonly record struct ArpPacket(ushort Operation, MacAddress SenderMac, IPv4Address SenderIp, MacAddress TargetMac, IPv4Address TargetIp)
{
    public const int Length = 28;
    public const ushort Request = 1, Reply = 2;

    public static bool TryParse(ReadOnlySpan<byte> b, out ArpPacket packet)
    {
        packet = default;
        if (b.Length < Length) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(b) != 1 || BinaryPrimitives.ReadUInt16BigEndian(b[2..]) != Ethernet.TypeIpv4
            || b[4] != 6 || b[5] != 4) return false;
        ushort op = BinaryPrimitives.ReadUInt16BigEndian(b[6..]);
        if (op is not (Request or Reply)) return false;
        packet = new ArpPacket(op, MacAddress.Read(b[8..]), IPv4Address.Read(b[14..]), MacAddress.Read(b[18..]), IPv4Address.Read(b[24..]));
        return true;
    }

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, 1);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], Ethernet.TypeIpv4);
        b[4] = 6;
        b[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], Operation);
        SenderMac.Write(b[8..]);
        SenderIp.Write(b[14..]);
        TargetMac.Write(b[18..]);
        TargetIp.Write(b[24..]);
    }
}
