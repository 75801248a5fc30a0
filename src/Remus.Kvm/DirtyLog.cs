using System.Numerics;

namespace Remus.Kvm;

/// <summary>
/// Helpers for KVM dirty bitmaps (<see cref="KvmVm.GetDirtyLog"/>): one bit per 4 KiB page, in 64-bit words, bit i of
/// word w standing for page w*64+i of the slot — the kernel's layout on little-endian 64-bit hosts.
/// </summary>
public static class DirtyLog
{
    /// <summary>Words of bitmap a slot of <paramref name="memorySize"/> bytes needs (pages rounded up to 64).</summary>
    public static int BitmapWords(ulong memorySize)
    {
        ulong pages = (memorySize + KvmVm.PageSize - 1) / KvmVm.PageSize;
        ulong words = (pages + 63) / 64;
        return words <= int.MaxValue ? (int)words : throw new ArgumentOutOfRangeException(nameof(memorySize));
    }

    /// <summary>A bitmap sized for a slot of <paramref name="memorySize"/> bytes.</summary>
    public static ulong[] AllocateBitmap(ulong memorySize) => new ulong[BitmapWords(memorySize)];

    /// <summary>Number of dirty pages in the bitmap.</summary>
    public static long CountDirty(ReadOnlySpan<ulong> bitmap)
    {
        long n = 0;
        foreach (ulong w in bitmap) n += BitOperations.PopCount(w);
        return n;
    }

    /// <summary>True when page <paramref name="page"/> is marked.</summary>
    public static bool IsDirty(ReadOnlySpan<ulong> bitmap, ulong page) =>
        (bitmap[(int)(page / 64)] & (1UL << (int)(page % 64))) != 0;

    /// <summary>Marks page <paramref name="page"/> (e.g. to merge writes the VMM made itself).</summary>
    public static void MarkDirty(Span<ulong> bitmap, ulong page) =>
        bitmap[(int)(page / 64)] |= 1UL << (int)(page % 64);

    /// <summary>ORs <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static void Merge(Span<ulong> destination, ReadOnlySpan<ulong> source)
    {
        if (source.Length > destination.Length) throw new ArgumentException("the source bitmap is longer than the destination", nameof(source));
        for (int i = 0; i < source.Length; i++) destination[i] |= source[i];
    }

    /// <summary>The page numbers of the set bits, in ascending order, without allocating:
    /// <c>foreach (ulong page in DirtyLog.EnumeratePages(bitmap)) ...</c></summary>
    public static DirtyPageEnumerator EnumeratePages(ReadOnlySpan<ulong> bitmap) => new(bitmap);

    /// <summary>Enumerates the set bits of a dirty bitmap as page numbers.</summary>
    public ref struct DirtyPageEnumerator
    {
        private readonly ReadOnlySpan<ulong> _bitmap;
        private int _word;
        private ulong _bits;
        private ulong _current;

        internal DirtyPageEnumerator(ReadOnlySpan<ulong> bitmap)
        {
            _bitmap = bitmap;
            _word = -1;
            _bits = 0;
            _current = 0;
        }

        public readonly ulong Current => _current;

        public readonly DirtyPageEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (_bits == 0)
            {
                if (++_word >= _bitmap.Length) return false;
                _bits = _bitmap[_word];
            }
            int bit = BitOperations.TrailingZeroCount(_bits);
            _bits &= _bits - 1;
            _current = (ulong)_word * 64 + (ulong)bit;
            return true;
        }
    }
}
