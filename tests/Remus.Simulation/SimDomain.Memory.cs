namespace Remus.Simulation;

/// <summary>
/// The simulated guest's RAM and dirty log. A step writes a page and only then marks it dirty, so a harvest that
/// races with a running guest (the pre-copy) never loses a write: at worst it reports the page again next round.
/// Untracked pages (the engine's hot pages) are reported by every harvest, and once more when they leave the set,
/// as the real platforms do.
/// </summary>
public sealed partial class SimDomain
{
    private readonly byte[] _memory;
    private readonly int _words;
    private readonly object _dirtyLock = new();
    private readonly ulong[] _dirty, _untracked, _populated;

    public ulong PageCount => (ulong)_config.Pages;

    public ulong ProgramFirstPage => GuestImage.CounterPage;

    public int DirtyBitmapWords => _words;

    public ReadOnlySpan<byte> ReadPage(ulong pfn) => _memory.AsSpan(checked((int)pfn * GuestImage.PageSize), GuestImage.PageSize);

    public Span<byte> WritablePage(ulong pfn) => _memory.AsSpan(checked((int)pfn * GuestImage.PageSize), GuestImage.PageSize);

    public void StartDirtyLog()
    {
        lock (_dirtyLock) Array.Clear(_dirty);
    }

    public void MarkPopulatedPages(Span<ulong> bitmap)
    {
        lock (_dirtyLock)
            for (int i = 0; i < _words; i++) bitmap[i] |= _populated[i];
    }

    public void HarvestDirty(Span<ulong> bitmap)
    {
        lock (_dirtyLock)
            for (int i = 0; i < _words; i++)
            {
                bitmap[i] |= _dirty[i] | _untracked[i];
                _dirty[i] = 0;
            }
    }

    public void SetUntracked(ReadOnlySpan<ulong> bitmap)
    {
        lock (_dirtyLock)
            for (int i = 0; i < _words; i++)
            {
                _dirty[i] |= _untracked[i]; // a page leaving the set is reported once more
                _untracked[i] = i < bitmap.Length ? bitmap[i] : 0;
            }
    }

    /// <summary>Whether the backup's memory is exactly a guest's at its counter (null) or the first difference.</summary>
    public string? VerifyImage() => GuestImage.Verify(_config, _memory);

    private void WritePagesOfStep(ulong n)
    {
        Span<int> pages = stackalloc int[GuestImage.PagesPerStep(_config)];
        GuestImage.PagesOfStep(_config, n, pages);
        foreach (int p in pages)
        {
            GuestImage.Fill(_memory.AsSpan(p * GuestImage.PageSize, GuestImage.PageSize), _config.Seed, n, p);
            MarkDirty(p);
        }
        // The platform's own page changes too; the engine must never send it.
        BitConverter.TryWriteBytes(_memory.AsSpan(GuestImage.PlatformPage * GuestImage.PageSize), n);
        MarkDirty(GuestImage.PlatformPage);
    }

    private void StoreCounter(ulong counter)
    {
        GuestImage.WriteCounter(_memory.AsSpan(GuestImage.CounterPage * GuestImage.PageSize, GuestImage.PageSize), _config, counter);
        MarkDirty(GuestImage.CounterPage);
    }

    private void MarkDirty(int pfn)
    {
        lock (_dirtyLock)
        {
            _dirty[pfn >> 6] |= 1UL << (pfn & 63);
            _populated[pfn >> 6] |= 1UL << (pfn & 63);
        }
    }
}
