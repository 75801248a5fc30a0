using System.Numerics;
using System.Runtime.InteropServices;
using K4os.Compression.LZ4;

namespace Remus.Checkpoint.Stream;

/// <summary>The per-page primitives: zero test, XOR, LZ4 block encode/decode. Allocation-free.</summary>
internal static class PageCodec
{
    /// <summary>Largest compressed form worth sending: anything else goes RAW.</summary>
    public const int MaxCompressedLength = StreamFormat.PageSize - 1;

    public static bool IsZero(ReadOnlySpan<byte> page) => !page.ContainsAnyExcept((byte)0);

    /// <summary><paramref name="destination"/> = <paramref name="a"/> XOR <paramref name="b"/>, one page.</summary>
    public static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination)
    {
        var va = MemoryMarshal.Cast<byte, Vector<byte>>(a[..StreamFormat.PageSize]);
        var vb = MemoryMarshal.Cast<byte, Vector<byte>>(b[..StreamFormat.PageSize]);
        var vd = MemoryMarshal.Cast<byte, Vector<byte>>(destination[..StreamFormat.PageSize]);
        for (int i = 0; i < vd.Length; i++) vd[i] = va[i] ^ vb[i];
    }

    /// <summary><paramref name="target"/> ^= <paramref name="delta"/>, one page.</summary>
    public static void XorInPlace(Span<byte> target, ReadOnlySpan<byte> delta)
    {
        var vt = MemoryMarshal.Cast<byte, Vector<byte>>(target[..StreamFormat.PageSize]);
        var vd = MemoryMarshal.Cast<byte, Vector<byte>>(delta[..StreamFormat.PageSize]);
        for (int i = 0; i < vt.Length; i++) vt[i] ^= vd[i];
    }

    /// <summary>
    /// Compresses one page into <paramref name="target"/> (at least <see cref="MaxCompressedLength"/> bytes).
    /// Returns the compressed length, or 0 when the page does not shrink below a page.
    /// </summary>
    public static int Compress(ReadOnlySpan<byte> page, Span<byte> target)
    {
        int n = LZ4Codec.Encode(page, target[..MaxCompressedLength], LZ4Level.L00_FAST);
        return n > 0 ? n : 0;
    }

    /// <summary>Decodes one compressed page; true only when it decodes to exactly one page.</summary>
    public static bool TryDecompress(ReadOnlySpan<byte> compressed, Span<byte> page) =>
        LZ4Codec.Decode(compressed, page[..StreamFormat.PageSize]) == StreamFormat.PageSize;

    /// <summary>
    /// True when one compressed page decodes to exactly one page, judged by walking the block
    /// (<see cref="Lz4BlockCheck"/>) and, only for the rare block that walk is too strict for, by decoding it into
    /// <paramref name="scratch"/>. Accepts exactly what <see cref="TryDecompress"/> accepts.
    /// </summary>
    public static bool Decodes(ReadOnlySpan<byte> compressed, Span<byte> scratch) =>
        Lz4BlockCheck.DecodesTo(compressed, StreamFormat.PageSize) || TryDecompress(compressed, scratch);
}
