using System.Buffers.Binary;
using System.Globalization;

namespace Remus.Sandbox.Net;

/// <summary>An IPv4 address, kept in host byte order (10.0.0.1 is 0x0A000001); read and written big-endian on the wire.</summary>
public readonly record struct IPv4Address(uint Value)
{
    public static readonly IPv4Address Any = new(0);
    public static readonly IPv4Address Broadcast = new(0xFFFFFFFF);
    public static readonly IPv4Address Loopback = new(0x7F000001);

    public bool IsAny => Value == 0;
    public bool IsLoopback => (Value >> 24) == 127;
    public bool IsBroadcast => Value == 0xFFFFFFFF;
    public bool IsMulticast => (Value >> 28) == 0xE;

    public static IPv4Address Read(ReadOnlySpan<byte> b) => new(BinaryPrimitives.ReadUInt32BigEndian(b));
    public void Write(Span<byte> b) => BinaryPrimitives.WriteUInt32BigEndian(b, Value);

    /// <summary>From a sockaddr_in's sin_addr as the program stores it (network order in memory).</summary>
    public static IPv4Address FromNetworkOrder(uint inMemory) => new(BinaryPrimitives.ReverseEndianness(inMemory));
    public uint ToNetworkOrder() => BinaryPrimitives.ReverseEndianness(Value);

    /// <summary>Whether <paramref name="other"/> is in the same /<paramref name="prefix"/> network.</summary>
    public bool SameNetwork(IPv4Address other, int prefix) =>
        prefix == 0 || (Value >> (32 - prefix)) == (other.Value >> (32 - prefix));

    public static bool TryParse(string s, out IPv4Address address)
    {
        address = Any;
        var parts = s.Split('.');
        if (parts.Length != 4) return false;
        uint v = 0;
        foreach (var p in parts)
        {
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit)) return false;
            if (!uint.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out uint octet) || octet > 255) return false;
            v = (v << 8) | octet;
        }
        address = new IPv4Address(v);
        return true;
    }

    public override string ToString() => $"{Value >> 24}.{(Value >> 16) & 255}.{(Value >> 8) & 255}.{Value & 255}";
}

/// <summary>An IPv4 address and a port (host order), as a sockaddr_in names them.</summary>
public readonly record struct NetEndpoint(IPv4Address Address, ushort Port)
{
    public override string ToString() => $"{Address}:{Port}";
}
