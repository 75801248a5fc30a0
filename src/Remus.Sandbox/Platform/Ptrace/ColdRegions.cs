namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// Which 2 MiB regions of the stub's address space the dirty log still scans (issue 14). PAGEMAP_SCAN walks every
/// page-table entry of what it scans (~2.5 ns each here: 0.65 ms per GiB the program has touched), so a region not
/// written for <see cref="ColdAfter"/> harvests leaves the scan: the vCPU thread unmaps it in the stub
/// (<see cref="PtraceVcpu"/>, after a last scan), and the program's next access to it faults and maps it back as any
/// first touch does (<c>AddressSpace.ResolveFault</c>, then <c>MapPages</c>, which registers it with the dirty log
/// again: tracked from before that access on). While the stub has more than one thread nothing is unmapped. A region
/// that comes back within its wait after going cold waits twice as long before it goes again (up to
/// <see cref="MaxBackoff"/> harvests), so a region that is read often is not unmapped often.
/// <para>What it trades: the scan then walks few entries but one VMA per run mapped back (a fault maps 16 pages), and a
/// program writing sparsely all over its memory keeps many such VMAs alive: measured, 1 GiB with 768 MiB touched
/// and one page written every 10 ms at a 31 MiB stride, the harvest fell from 0.5 ms to 0.08 ms for the first
/// seconds, then rose back to 0.3-0.6 ms with 250-1 800 VMAs in the stub. Mapping a region's runs back whole at its
/// first fault would bound that at one VMA per warm region (not done yet).</para>
/// All under the stub's MapLock.
/// </summary>
internal sealed class ColdRegions(int coldAfter)
{
    public const int Shift = 21;
    public const int MaxQueued = 64;
    public const long MaxBackoff = 1 << 14;

    /// <summary>Harvests without a write after which a region leaves the scan.</summary>
    public int ColdAfter { get; } = coldAfter;

    private enum State { Warm, Queued, Unmapped }

    private sealed class Region(ulong index, long lastWritten, long backoff)
    {
        public readonly ulong Index = index;
        public long LastWritten = lastWritten; // the harvest count of its last write (in the future after a backoff)
        public long Backoff = backoff;
        public long UnmappedAt;
        public State State;
    }

    private readonly Dictionary<ulong, LinkedListNode<Region>> _regions = [];
    private readonly LinkedList<Region> _warm = new(); // the regions scanned, the most recently written first
    private readonly ulong[] _queued = new ulong[MaxQueued];
    private int _queuedCount;
    private long _now;
    private volatile bool _anyQueued;

    /// <summary>Whether regions wait to be unmapped (read without the lock by the vCPU threads).</summary>
    public bool AnyQueued => _anyQueued;

    /// <summary>Regions scanned now.</summary>
    public int Warm => _warm.Count;

    /// <summary>[start, start+length) was mapped in the stub and registered: its regions are scanned again.</summary>
    public void Mapped(ulong start, ulong length)
    {
        if (length == 0) return;
        for (ulong r = start >> Shift; r <= (start + length - 1) >> Shift; r++)
        {
            if (!_regions.TryGetValue(r, out var node))
            {
                _regions[r] = _warm.AddFirst(new Region(r, _now, ColdAfter));
                continue;
            }
            var region = node.Value;
            // Back soon after it went (within its last wait): it is in use (read, most likely), so it waits twice as
            // long next time; back later: it was cold indeed, and goes again after the usual wait. (Doubling on every
            // return kept regions written every few seconds mapped for good, and their mappings grew back to all of it.)
            if (region.State == State.Unmapped)
                region.Backoff = _now - region.UnmappedAt < region.Backoff ? Math.Min(region.Backoff * 2, MaxBackoff) : ColdAfter;
            if (region.State == State.Warm) _warm.Remove(node);
            region.State = State.Warm; // a queued region leaves the queue (TakeQueued skips it)
            _warm.AddFirst(node);
            region.LastWritten = Math.Max(region.LastWritten, _now + region.Backoff - ColdAfter);
        }
    }

    /// <summary>A harvest found the page at <paramref name="address"/> written.</summary>
    public void Written(ulong address)
    {
        if (!_regions.TryGetValue(address >> Shift, out var node)) return;
        var region = node.Value;
        if (region.State != State.Warm) return; // queued, still mapped: the last scan before the unmap reports it
        if (region.LastWritten < _now) region.LastWritten = _now;
        if (node != _warm.First)
        {
            _warm.Remove(node);
            _warm.AddFirst(node);
        }
    }

    /// <summary>After a harvest: the regions not written for <see cref="ColdAfter"/> harvests are queued to go.</summary>
    public void EndHarvest()
    {
        _now++;
        while (_queuedCount < MaxQueued && _warm.Last is { } node && _now - node.Value.LastWritten >= ColdAfter)
        {
            _warm.RemoveLast();
            node.Value.State = State.Queued;
            _queued[_queuedCount++] = node.Value.Index;
        }
        _anyQueued = _queuedCount > 0;
    }

    /// <summary>The regions still queued (into <paramref name="into"/>, up to <see cref="MaxQueued"/>); the queue empties.</summary>
    public int TakeQueued(Span<ulong> into)
    {
        int n = 0;
        for (int i = 0; i < _queuedCount; i++)
            if (_regions[_queued[i]].Value.State == State.Queued && n < into.Length) into[n++] = _queued[i];
        _queuedCount = 0;
        _anyQueued = false;
        return n;
    }

    /// <summary>Region <paramref name="region"/>, queued, stays mapped: scanned again, cold again after twice as long.</summary>
    public void Kept(ulong region)
    {
        if (!_regions.TryGetValue(region, out var node) || node.Value.State != State.Queued) return;
        var r = node.Value;
        r.Backoff = Math.Min(r.Backoff * 2, MaxBackoff);
        r.State = State.Warm;
        r.LastWritten = Math.Max(r.LastWritten, _now + r.Backoff - ColdAfter);
        _warm.AddFirst(node);
    }

    /// <summary>The vCPU thread unmapped region <paramref name="region"/> (it is no longer scanned).</summary>
    public void Unmapped(ulong region)
    {
        if (_regions.TryGetValue(region, out var node) && node.Value.State == State.Queued)
        {
            node.Value.State = State.Unmapped;
            node.Value.UnmappedAt = _now;
        }
    }
}
