namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// Disjoint, sorted sequence ranges [start, end) (the receiver's out-of-order data, the sender's SACK scoreboard),
/// bounded in count: past <see cref="MaxRanges"/> the highest ranges are forgotten.
/// </summary>
internal sealed class SeqRangeSet
{
    public const int MaxRanges = 64;
    private readonly List<(uint Start, uint End)> _r = [];

    public int Count => _r.Count;
    public (uint Start, uint End) this[int i] => _r[i];
    public void Clear() => _r.Clear();

    /// <summary>Adds [start, end), merging with what it touches; returns the index of the merged range.</summary>
    public int Add(uint start, uint end)
    {
        if (!Seq.Lt(start, end)) return -1;
        int i = 0;
        while (i < _r.Count && Seq.Lt(_r[i].End, start)) i++;
        // Merge every range overlapping or adjacent to [start, end).
        while (i < _r.Count && Seq.Le(_r[i].Start, end))
        {
            start = Seq.Min(start, _r[i].Start);
            end = Seq.Max(end, _r[i].End);
            _r.RemoveAt(i);
        }
        _r.Insert(i, (start, end));
        if (_r.Count > MaxRanges) _r.RemoveAt(_r.Count - 1);
        return i < _r.Count ? i : -1;
    }

    /// <summary>Drops everything below <paramref name="seq"/>.</summary>
    public void RemoveBelow(uint seq)
    {
        int drop = 0;
        while (drop < _r.Count && Seq.Le(_r[drop].End, seq)) drop++;
        if (drop > 0) _r.RemoveRange(0, drop);
        if (_r.Count > 0 && Seq.Lt(_r[0].Start, seq)) _r[0] = (seq, _r[0].End);
    }

    /// <summary>Whether <paramref name="seq"/> is in some range.</summary>
    public bool Contains(uint seq)
    {
        foreach (var (s, e) in _r)
        {
            if (Seq.Lt(seq, s)) return false;
            if (Seq.Lt(seq, e)) return true;
        }
        return false;
    }

    /// <summary>The end of the range holding <paramref name="seq"/>, or <paramref name="seq"/> itself when none does.</summary>
    public uint SkipCovered(uint seq)
    {
        foreach (var (s, e) in _r)
        {
            if (Seq.Lt(seq, s)) break;
            if (Seq.Lt(seq, e)) return e;
        }
        return seq;
    }

    /// <summary>The start of the first range above <paramref name="seq"/> (exclusive of covering ones), or null.</summary>
    public uint? NextStartAfter(uint seq)
    {
        foreach (var (s, _) in _r)
            if (Seq.Gt(s, seq)) return s;
        return null;
    }

    public uint? HighestEnd => _r.Count == 0 ? null : _r[^1].End;

    public void Save(BinaryWriter w)
    {
        w.Write(_r.Count);
        foreach (var (s, e) in _r) { w.Write(s); w.Write(e); }
    }

    public void Load(BinaryReader r)
    {
        _r.Clear();
        int n = r.ReadInt32();
        if (n < 0 || n > MaxRanges) throw new InvalidDataException("tcp: bad range count");
        for (int i = 0; i < n; i++) _r.Add((r.ReadUInt32(), r.ReadUInt32()));
    }
}
