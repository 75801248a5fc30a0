using System.Buffers;

namespace Remus.Sandbox.Net;

/// <summary>A copy of a datagram in a pooled array (held by a queue: ARP, loopback, reassembly, a socket). Return it once.</summary>
internal readonly record struct PacketBuffer(byte[] Array, int Length)
{
    public static PacketBuffer Copy(ReadOnlySpan<byte> data)
    {
        var a = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1));
        data.CopyTo(a);
        return new PacketBuffer(a, data.Length);
    }

    public ReadOnlySpan<byte> Span => Array.AsSpan(0, Length);

    public void Return() => ArrayPool<byte>.Shared.Return(Array);

    public void Save(BinaryWriter w)
    {
        w.Write(Length);
        w.Write(Array, 0, Length);
    }

    public static PacketBuffer Load(BinaryReader r)
    {
        int length = r.ReadInt32();
        if (length is < 0 or > 65536) throw new InvalidDataException($"stack snapshot: datagram of {length} bytes");
        var a = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        r.BaseStream.ReadExactly(a, 0, length);
        return new PacketBuffer(a, length);
    }
}

/// <summary>Something that takes one datagram (a span cannot be an Action's argument).</summary>
internal delegate void PacketHandler(ReadOnlySpan<byte> packet);
