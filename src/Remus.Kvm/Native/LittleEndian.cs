using System.Buffers.Binary;

namespace Remus.Kvm.Native;

/// <summary>Sequential little-endian writer over a span (BinaryPrimitives).</summary>
internal ref struct LittleEndianWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    public LittleEndianWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    public readonly int Position => _position;

    private Span<byte> Take(int n)
    {
        if (_buffer.Length - _position < n) throw new ArgumentException("the destination is too small", "destination");
        var s = _buffer.Slice(_position, n);
        _position += n;
        return s;
    }

    public void U8(byte v) => Take(1)[0] = v;
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);
    public void Bytes(scoped ReadOnlySpan<byte> v) => v.CopyTo(Take(v.Length));
}

/// <summary>Sequential little-endian reader over a span; running past the end is an <see cref="InvalidDataException"/>.</summary>
internal ref struct LittleEndianReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly string _what;
    private int _position;

    public LittleEndianReader(ReadOnlySpan<byte> buffer, string what)
    {
        _buffer = buffer;
        _what = what;
        _position = 0;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _buffer.Length - _position;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _buffer.Length - _position < n)
            throw new InvalidDataException($"{_what} is truncated ({_buffer.Length} bytes)");
        var s = _buffer.Slice(_position, n);
        _position += n;
        return s;
    }

    public byte U8() => Take(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    public ReadOnlySpan<byte> Bytes(int n) => Take(n);
}
