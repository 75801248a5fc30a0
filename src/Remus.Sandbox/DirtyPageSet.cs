using System.Numerics;

namespace Remus.Sandbox;

/// <summary>
/// A set of guest pages (one bit each) with a summary of one bit per 64-bit word that has any bit set, so that
/// listing and clearing it cost O(words set + words / 64), not O(guest memory): 16 GiB of guest RAM is 65 536 words
/// of bitmap but 1 024 words of summary. Every writer goes through <see cref="Add"/> or <see cref="OrWord"/>, which
/// keep the summary; code that fills <see cref="Bitmap"/> directly must call <see cref="Resummarize"/> after.
/// Not thread-safe: one harvester at a time (the dirty logs' own locks serialize them).
/// </summary>
public sealed class DirtyPageSet
{
    private readonly ulong[] _bits;
    private readonly ulong[] _summary; // bit w%64 of word w/64: _bits[w] != 0

    /// <param name="words">words of bitmap (64 pages each): <see cref="ICheckpointable.DirtyBitmapWords"/></param>
    public DirtyPageSet(int words)
    {
        _bits = new ulong[words];
        _summary = new ulong[(words + 63) / 64];
    }

    /// <summary>The plain bitmap (read it; write it only with <see cref="Resummarize"/> after).</summary>
    public Span<ulong> Bitmap => _bits;

    /// <summary>Pages the set can hold.</summary>
    public ulong Capacity => (ulong)_bits.Length * 64;

    /// <summary>Adds page <paramref name="pfn"/> (ignored past <see cref="Capacity"/>).</summary>
    public void Add(ulong pfn)
    {
        if (pfn >= Capacity) return;
        int w = (int)(pfn >> 6);
        _bits[w] |= 1UL << (int)(pfn & 63);
        _summary[w >> 6] |= 1UL << (w & 63);
    }

    /// <summary>Adds pages [<paramref name="first"/>, <paramref name="end"/>) (clipped to <see cref="Capacity"/>).</summary>
    public void AddRange(ulong first, ulong end)
    {
        end = Math.Min(end, Capacity);
        while (first < end)
        {
            int w = (int)(first >> 6), from = (int)(first & 63);
            int to = (int)Math.Min(64, (ulong)from + (end - first));
            ulong mask = (to - from == 64 ? ulong.MaxValue : ((1UL << (to - from)) - 1)) << from;
            OrWord(w, mask);
            first += (ulong)(to - from);
        }
    }

    /// <summary>ORs <paramref name="bits"/> into word <paramref name="word"/> (pages word*64 + bit).</summary>
    public void OrWord(int word, ulong bits)
    {
        if (bits == 0) return;
        _bits[word] |= bits;
        _summary[word >> 6] |= 1UL << (word & 63);
    }

    /// <summary>Whether page <paramref name="pfn"/> is in the set.</summary>
    public bool Contains(ulong pfn) => pfn < Capacity && (_bits[(int)(pfn >> 6)] & (1UL << (int)(pfn & 63))) != 0;

    /// <summary>Rebuilds the summary after <see cref="Bitmap"/> was written directly (O(memory): not for a pause).</summary>
    public void Resummarize()
    {
        Array.Clear(_summary);
        for (int w = 0; w < _bits.Length; w++)
            if (_bits[w] != 0) _summary[w >> 6] |= 1UL << (w & 63);
    }

    /// <summary>Number of pages in the set.</summary>
    public int Count
    {
        get
        {
            int n = 0;
            for (int s = 0; s < _summary.Length; s++)
                for (ulong sw = _summary[s]; sw != 0; sw &= sw - 1)
                    n += BitOperations.PopCount(_bits[s * 64 + BitOperations.TrailingZeroCount(sw)]);
            return n;
        }
    }

    /// <summary>
    /// Writes the pages of [<paramref name="first"/>, <paramref name="limit"/>) in the set into <paramref name="into"/>
    /// in ascending order and returns how many there are (all of them are counted, even past the span's end: grow
    /// the span and call again if the count exceeds it).
    /// </summary>
    public int CopyTo(Span<ulong> into, ulong first, ulong limit)
    {
        int n = 0;
        for (int s = 0; s < _summary.Length; s++)
            for (ulong sw = _summary[s]; sw != 0; sw &= sw - 1)
            {
                int w = s * 64 + BitOperations.TrailingZeroCount(sw);
                for (ulong bits = _bits[w]; bits != 0; bits &= bits - 1)
                {
                    ulong pfn = (ulong)w * 64 + (ulong)BitOperations.TrailingZeroCount(bits);
                    if (pfn < first || pfn >= limit) continue;
                    if (n < into.Length) into[n] = pfn;
                    n++;
                }
            }
        return n;
    }

    /// <summary>Adds this set's pages to <paramref name="into"/> and empties this set.</summary>
    public void MoveTo(DirtyPageSet into)
    {
        for (int s = 0; s < _summary.Length; s++)
        {
            for (ulong sw = _summary[s]; sw != 0; sw &= sw - 1)
            {
                int w = s * 64 + BitOperations.TrailingZeroCount(sw);
                if (w < into._bits.Length) into.OrWord(w, _bits[w]);
                _bits[w] = 0;
            }
            _summary[s] = 0;
        }
    }

    /// <summary>ORs this set's pages into <paramref name="bitmap"/> and empties this set.</summary>
    public void MoveTo(Span<ulong> bitmap)
    {
        for (int s = 0; s < _summary.Length; s++)
        {
            for (ulong sw = _summary[s]; sw != 0; sw &= sw - 1)
            {
                int w = s * 64 + BitOperations.TrailingZeroCount(sw);
                if (w < bitmap.Length) bitmap[w] |= _bits[w];
                _bits[w] = 0;
            }
            _summary[s] = 0;
        }
    }

    /// <summary>Empties the set (only the words the summary names are touched).</summary>
    public void Clear()
    {
        for (int s = 0; s < _summary.Length; s++)
        {
            for (ulong sw = _summary[s]; sw != 0; sw &= sw - 1) _bits[s * 64 + BitOperations.TrailingZeroCount(sw)] = 0;
            _summary[s] = 0;
        }
    }
}
