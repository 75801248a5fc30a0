namespace Remus.Sandbox.Net;

/// <summary>A 48-bit Ethernet address (the low 48 bits of <see cref="Value"/>, first octet most significant).</summary>
public readonly record struct MacAddress(ulong Value)
{
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFF);

    public static MacAddress Read(ReadOnlySpan<byte> b) =>
        new(((ulong)b[0] << 40) | ((ulong)b[1] << 32) | ((ulong)b[2] << 24) | ((ulong)b[3] << 16) | ((ulong)b[4] << 8) | b[5]);

    public void Write(Span<byte> b)
    {
        for (int i = 0; i < 6; i++) b[i] = (byte)(Value >> (40 - 8 * i));
    }

    public bool IsMulticast => ((Value >> 40) & 1) != 0;

    /// <summary>A locally administered unicast address derived from a name (the domain's default MAC): 02:52:4d:xx:xx:xx.</summary>
    public static MacAddress FromName(string name)
    {
        uint h = 2166136261; // FNV-1a: stable across runs and hosts (string.GetHashCode is not)
        foreach (byte c in System.Text.Encoding.UTF8.GetBytes(name)) h = (h ^ c) * 16777619;
        return new MacAddress(0x02_52_4D_00_00_00UL | (h & 0xFFFFFF));
    }

    public static bool TryParse(string s, out MacAddress mac)
    {
        mac = default;
        var parts = s.Split(':');
        if (parts.Length != 6) return false;
        ulong v = 0;
        foreach (var p in parts)
        {
            if (p.Length != 2 || !byte.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out byte o)) return false;
            v = (v << 8) | o;
        }
        mac = new MacAddress(v);
        return true;
    }

    public override string ToString()
    {
        ulong v = Value;
        return string.Join(':', Enumerable.Range(0, 6).Select(i => ((byte)(v >> (40 - 8 * i))).ToString("x2")));
    }
}
