using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// The dirty pages of one epoch, copied out of guest memory while the domain is suspended (a memcpy each) so the
/// domain can resume at once and the encoding and sending happen while it runs (the seed's "postcopy").
/// The buffer is reused from epoch to epoch, and grown ahead of need with <see cref="Reserve"/> outside the pause:
/// on our nested machines the first write to fresh memory costs ~14 µs a page (9 870 pages staged into a fresh
/// buffer made a 111 ms pause).
/// </summary>
internal sealed class StagedPages : IPageSource, IDisposable
{
    private byte[] _buffer = Touched(256);
    private ulong[] _pfns = [];
    private int _count;

    /// <summary>The staged pages, in ascending order.</summary>
    public ReadOnlySpan<ulong> Pfns => _pfns.AsSpan(0, _count);

    public int Count => _count;

    /// <summary>Most pages reserved ahead of need at the start of protection (32 MiB).</summary>
    public const int ReserveLimit = 8192;

    /// <summary>Most pages one epoch can stage (one array: 2 GiB).</summary>
    public static readonly int MaxPages = Array.MaxLength / 4096;

    /// <summary>Pages the buffer holds without growing.</summary>
    public int Capacity => _buffer.Length / 4096;

    /// <summary>
    /// Makes room for <paramref name="pages"/> pages (the staged content is lost: call it between epochs, with the
    /// domain running), so that a later <see cref="Stage"/> does not allocate or touch fresh memory in the pause.
    /// </summary>
    public void Reserve(int pages)
    {
        pages = Math.Min(pages, MaxPages);
        if (pages > _pfns.Length) _pfns = new ulong[pages];
        if (pages <= Capacity) return;
        _buffer = Touched(pages);
        _count = 0;
    }

    private static byte[] Touched(int pages)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(checked(pages * 4096));
        for (int i = 0; i < buffer.Length; i += 4096) buffer[i] = 0;
        return buffer;
    }

    /// <summary>
    /// Copies pages <paramref name="pfns"/> (ascending) out of <paramref name="source"/>, and the list into an array
    /// of its own, kept from epoch to epoch (grown only when an epoch stages more pages than any before).
    /// </summary>
    public void Stage(IPageSource source, ReadOnlySpan<ulong> pfns)
    {
        if (pfns.Length > MaxPages)
            throw new InvalidOperationException($"{pfns.Length} dirty pages in one epoch: more than a checkpoint can stage ({MaxPages})");
        if (pfns.Length > Capacity) _buffer = Touched(pfns.Length); // in the pause: only when Reserve fell short
        if (pfns.Length > _pfns.Length) _pfns = new ulong[Math.Max(pfns.Length, Math.Min(2 * _pfns.Length, MaxPages))];
        for (int i = 0; i < pfns.Length; i++) source.GetPage(pfns[i]).CopyTo(_buffer.AsSpan(i * 4096, 4096));
        pfns.CopyTo(_pfns);
        _count = pfns.Length;
    }

    /// <summary>The <paramref name="i"/>-th staged page.</summary>
    public ReadOnlySpan<byte> PageAt(int i) => _buffer.AsSpan(i * 4096, 4096);

    /// <summary>Keeps only the pages whose <paramref name="keep"/> entry is true, in order.</summary>
    public void Keep(ReadOnlySpan<bool> keep)
    {
        int at = 0;
        for (int i = 0; i < _count; i++)
        {
            if (!keep[i]) continue;
            if (at != i)
            {
                _pfns[at] = _pfns[i];
                _buffer.AsSpan(i * 4096, 4096).CopyTo(_buffer.AsSpan(at * 4096, 4096));
            }
            at++;
        }
        _count = at;
    }

    public ReadOnlySpan<byte> GetPage(ulong pfn)
    {
        int i = Array.BinarySearch(_pfns, 0, _count, pfn);
        if (i < 0) throw new ArgumentOutOfRangeException(nameof(pfn), $"page {pfn} was not staged");
        return _buffer.AsSpan(i * 4096, 4096);
    }

    public void Dispose() => _buffer = [];
}
