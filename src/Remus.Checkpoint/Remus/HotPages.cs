namespace Remus.Checkpoint.Remus;

/// <summary>
/// Pages the guest writes epoch after epoch ("hot"), left untracked by the dirty log and found changed by
/// comparison instead. On our nested machines it is changing a page-table entry that costs: the guest's next write
/// to a page whose protection was set again costs ~14 µs, fault or not, and the ptrace dirty log sets it again for
/// every written page at every harvest; an untracked page's entry is left alone, and comparing it with the copy last
/// sent costs ~0.15 µs. So a page that changed keeps a shadow (the content the backup holds) and stays untracked
/// while it keeps changing; once it has not changed for <c>keepEpochs</c> epochs it is tracked again.
///
/// The rules, for the pages reported by the harvest of epoch N (written, untracked, or just made tracked again):
/// a page with a shadow that equals its staged copy did not change and is not sent; any other page is sent, and its
/// shadow (new if there is room) becomes the staged copy. The shadow is always exactly what was last sent, so
/// dropping one is always safe (the page is then sent when next reported); it is dropped once the page is neither
/// untracked nor was untracked at the last harvest (a page made tracked again is reported once more: the shadow
/// serves that comparison).
/// </summary>
internal sealed class HotPages
{
    private const int PageSize = 4096, PagesPerChunk = 256;

    /// <summary>Most runs of consecutive untracked pages, by default.</summary>
    public const int MaxRuns = 256;

    private readonly int _maxRuns;

    private readonly int _capacity;
    private readonly uint _keepEpochs;
    private readonly int[] _slotOf;          // per guest page: its shadow's slot, or -1
    private ulong[] _untracked;              // the pages to leave untracked from now on
    private ulong[] _previous;               // the set before (untracked at the last harvest)
    private readonly List<byte[]> _chunks = [];
    private ulong[] _owner = new ulong[PagesPerChunk];
    private uint[] _lastChanged = new uint[PagesPerChunk];
    private bool[] _keep = [];
    private readonly List<(ulong Start, ulong Length)> _runs = [];
    private int _used;

    /// <param name="pageCount">guest pages</param>
    /// <param name="capacity">most pages with a shadow (4 KiB of memory each)</param>
    /// <param name="keepEpochs">epochs a page stays unprotected after it last changed</param>
    /// <param name="maxRuns">most runs of consecutive untracked pages</param>
    public HotPages(ulong pageCount, int capacity, int keepEpochs, int maxRuns = MaxRuns)
    {
        _maxRuns = maxRuns;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keepEpochs);
        _capacity = capacity;
        _keepEpochs = (uint)keepEpochs;
        _slotOf = new int[pageCount];
        Array.Fill(_slotOf, -1);
        _untracked = new ulong[(pageCount + 63) / 64];
        _previous = new ulong[_untracked.Length];
    }

    /// <summary>The pages to leave untracked from now on (after <see cref="Filter"/>).</summary>
    public ReadOnlySpan<ulong> Untracked => _untracked;

    /// <summary>Pages with a shadow now.</summary>
    public int Count => _used;

    /// <summary>
    /// Drops from <paramref name="staged"/> the pages equal to what was last sent, keeps the shadows of the rest,
    /// and computes <see cref="Untracked"/> for the epoch that follows <paramref name="epoch"/>.
    /// </summary>
    public void Filter(StagedPages staged, ulong epoch)
    {
        uint now = (uint)epoch;
        int n = staged.Count;
        if (_keep.Length < n) _keep = new bool[Math.Max(n, _keep.Length * 2)];
        var pfns = staged.Pfns;
        for (int i = 0; i < n; i++)
        {
            ulong pfn = pfns[i];
            var page = staged.PageAt(i);
            int slot = _slotOf[pfn];
            if (slot >= 0 && page.SequenceEqual(Shadow(slot)))
            {
                _keep[i] = false;
                continue;
            }
            _keep[i] = true;
            if (slot < 0)
            {
                if (_used >= _capacity) continue;
                slot = Allocate(pfn);
            }
            page.CopyTo(Shadow(slot));
            _lastChanged[slot] = now;
        }
        staged.Keep(_keep.AsSpan(0, n));

        // Age: a page unchanged for keepEpochs epochs is tracked again; its shadow goes once it was compared after that.
        (_previous, _untracked) = (_untracked, _previous);
        Array.Clear(_untracked);
        for (int slot = 0; slot < _used;)
        {
            ulong pfn = _owner[slot];
            bool hot = now - _lastChanged[slot] < _keepEpochs;
            if (!hot && (_previous[pfn >> 6] & (1UL << (int)(pfn & 63))) == 0)
            {
                Free(slot); // the last slot moves here: look at this slot again
                continue;
            }
            if (hot) _untracked[pfn >> 6] |= 1UL << (int)(pfn & 63);
            slot++;
        }
        LimitRuns();
    }

    /// <summary>
    /// The dirty log scans around each run of untracked pages, one PAGEMAP_SCAN per gap (~4 µs each here, in the
    /// pause): beyond the limit of runs only the longest stay untracked; the others are tracked by protection
    /// (their shadows stay, which is always safe).
    /// </summary>
    private void LimitRuns()
    {
        _runs.Clear();
        ulong pages = (ulong)_slotOf.Length;
        for (ulong pfn = 0; pfn < pages;)
        {
            if (_untracked[pfn >> 6] == 0 && (pfn & 63) == 0) { pfn += 64; continue; }
            if ((_untracked[pfn >> 6] & (1UL << (int)(pfn & 63))) == 0) { pfn++; continue; }
            ulong start = pfn;
            while (pfn < pages && (_untracked[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0) pfn++;
            _runs.Add((start, pfn - start));
        }
        if (_runs.Count <= _maxRuns) return;
        // Longest first, then lowest address: the same runs stay untracked from epoch to epoch.
        _runs.Sort((a, b) => a.Length != b.Length ? b.Length.CompareTo(a.Length) : a.Start.CompareTo(b.Start));
        for (int i = _maxRuns; i < _runs.Count; i++)
            for (ulong pfn = _runs[i].Start; pfn < _runs[i].Start + _runs[i].Length; pfn++)
                _untracked[pfn >> 6] &= ~(1UL << (int)(pfn & 63));
    }

    private Span<byte> Shadow(int slot) =>
        _chunks[slot / PagesPerChunk].AsSpan(slot % PagesPerChunk * PageSize, PageSize);

    private int Allocate(ulong pfn)
    {
        int slot = _used++;
        if (slot / PagesPerChunk >= _chunks.Count) _chunks.Add(new byte[PagesPerChunk * PageSize]);
        if (slot >= _owner.Length)
        {
            Array.Resize(ref _owner, _owner.Length * 2);
            Array.Resize(ref _lastChanged, _lastChanged.Length * 2);
        }
        _owner[slot] = pfn;
        _slotOf[pfn] = slot;
        return slot;
    }

    private void Free(int slot)
    {
        int last = --_used;
        _slotOf[_owner[slot]] = -1;
        if (slot != last)
        {
            Shadow(last).CopyTo(Shadow(slot));
            _owner[slot] = _owner[last];
            _lastChanged[slot] = _lastChanged[last];
            _slotOf[_owner[slot]] = slot;
        }
    }
}
