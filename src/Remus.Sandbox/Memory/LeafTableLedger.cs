using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>
/// What a domain being restored (a migration target, a Remus backup) knows of its leaf page tables between restores,
/// so that <see cref="AddressSpace.Restore"/> rebuilds the frame allocator in proportion to what changed, not to
/// the memory mapped (issue 14: walking every leaf of a 4 GiB domain was 5-55 ms of a migration's downtime, and of
/// every checkpoint a backup applies).
/// <para>
/// Restore needs the frames the tables hold: the table pages and every frame a leaf entry holds. Leaf tables (level
/// 1) are almost all of it, one per 2 MiB mapped; the levels above are a handful of pages, walked whole each time.
/// The ledger keeps, for every leaf table it counts, a copy of its 512 entries (its shadow) and, per frame, how many
/// counted entries hold it (<see cref="_refs"/>; <see cref="_held"/> is the bitmap of those held at least once). Every
/// page the restore's writer touches is noted (<see cref="Note"/>); a noted page that is counted is compared with its
/// shadow and the difference applied, so the counts always describe the counted tables as they are in RAM.
/// </para>
/// <para>
/// A restore then walks the upper levels from the root, which names the leaf tables in use: those not counted are
/// counted, those counted but no longer named are taken out. The result is exactly what a walk of every table gives.
/// Before the state arrives (a migration's rounds, a backup's initial synchronisation) the root is not known, so
/// <see cref="Prepare"/> counts every noted page that looks like a leaf table (entries zero or holding a frame of
/// RAM): a guess that only saves time; pages that were not tables in the end are taken out by the restore's walk.
/// </para>
/// <para>
/// Valid while the tables change only through the restore's writer: any edit of the tables by the kernel
/// (<see cref="PageTableEditor.Edits"/>) since the last sync makes the next one start from nothing. A table reached
/// twice (never in a kernel's tables) or a count that would overflow does too, by a full walk.
/// </para>
/// </summary>
internal sealed class LeafTableLedger
{
    private const int Entries = 512;
    private const ulong LeafBits = PageTableEditor.AddressMask | PageTableEditor.HasFrame | PageTableEditor.Present |
                                   PageTableEditor.Writable | PageTableEditor.User | PageTableEditor.Accessed |
                                   PageTableEditor.Dirty | PageTableEditor.NoExecute;

    private readonly GuestMemory _ram;
    private readonly ulong _first, _limit;
    private readonly int[] _refs;
    private readonly ulong[] _held;
    private readonly ulong[] _pending, _pendingSummary; // pages noted since the last sync
    private readonly Dictionary<ulong, ulong[]> _counted = [];
    private readonly Dictionary<ulong, int> _named = [];  // a sync's leaf tables, as the upper levels name them
    private readonly List<ulong> _upper = [];             // a sync's upper table pages
    private readonly List<ulong> _drop = [];
    private readonly Stack<ulong[]> _spare = new();
    private bool _broken;

    public LeafTableLedger(GuestMemory ram)
    {
        _ram = ram;
        _first = GuestMemory.UserBase / GuestMemory.PageSize;
        _limit = ram.Size / GuestMemory.PageSize;
        _refs = new int[_limit];
        _held = new ulong[ram.BitmapWords];
        _pending = new ulong[ram.BitmapWords];
        _pendingSummary = new ulong[(_pending.Length + 63) / 64];
    }

    /// <summary>The kernel's table edits (<see cref="PageTableEditor.Edits"/>) when the ledger last matched RAM.</summary>
    public long EditsAtSync { get; set; }

    /// <summary>Leaf tables counted now.</summary>
    public int Counted => _counted.Count;

    /// <summary>The last <see cref="Sync"/>'s leaf tables counted there (not before) and dropped (guessed wrong or gone).</summary>
    public int LastCounted { get; private set; }

    /// <inheritdoc cref="LastCounted"/>
    public int LastDropped { get; private set; }

    /// <summary>Faults in the pages of the bitmaps a sync reads whole (see <see cref="AddressSpace.PrepareRestore"/>).</summary>
    public void TouchBitmaps() => AddressSpace.TouchPages(_held);

    /// <summary>Page <paramref name="pfn"/> was (or is about to be) written by the restore's writer. Thread-safe.</summary>
    public void Note(ulong pfn)
    {
        if (pfn < _first || pfn >= _limit) return;
        int w = (int)(pfn >> 6);
        ulong bit = 1UL << (int)(pfn & 63);
        if ((Volatile.Read(ref _pending[w]) & bit) != 0) return;
        Interlocked.Or(ref _pending[w], bit);
        ulong summaryBit = 1UL << (w & 63);
        if ((Volatile.Read(ref _pendingSummary[w >> 6]) & summaryBit) == 0) Interlocked.Or(ref _pendingSummary[w >> 6], summaryBit);
    }

    /// <summary>
    /// Brings the counted tables up to date with the pages noted since the last call; with <paramref name="guess"/>,
    /// also counts the noted pages that look like leaf tables (before the root is known). O(pages noted).
    /// </summary>
    public void Prepare(bool guess)
    {
        for (int s = 0; s < _pendingSummary.Length; s++)
        {
            if (_pendingSummary[s] == 0) continue;
            for (ulong sw = Interlocked.Exchange(ref _pendingSummary[s], 0); sw != 0; sw &= sw - 1)
            {
                int w = s * 64 + BitOperations.TrailingZeroCount(sw);
                for (ulong bits = Interlocked.Exchange(ref _pending[w], 0); bits != 0; bits &= bits - 1)
                {
                    ulong pfn = (ulong)w * 64 + (ulong)BitOperations.TrailingZeroCount(bits);
                    if (_counted.TryGetValue(pfn, out var shadow)) Refresh(pfn, shadow);
                    else if (guess && LooksLikeLeafTable(pfn)) Count(pfn);
                }
            }
        }
    }

    /// <summary>
    /// The frames the tables below <paramref name="tables"/>' root hold, into <paramref name="used"/> (cleared
    /// first): every table page and every frame a leaf holds, exactly as <see cref="PageTableEditor.MarkReachable"/>
    /// finds them. Counts what the root names and no more. False (and <paramref name="used"/> undefined) when the
    /// ledger cannot say: the caller walks the tables itself and drops the ledger.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per restore, over a bitmap of all RAM: optimized from the first call
    public bool Sync(Span<ulong> used)
    {
        Prepare(guess: false);
        if (_broken) return false;
        _named.Clear();
        _upper.Clear();
        used.Clear();
        if (!NameLeafTables(PageTableEditor.Root, 4, used)) return false;
        // Take out what the root does not name; count what it names.
        _drop.Clear();
        foreach (ulong pfn in _counted.Keys) if (!_named.ContainsKey(pfn)) _drop.Add(pfn);
        foreach (ulong pfn in _drop) Uncount(pfn);
        LastCounted = 0;
        foreach (ulong pfn in _named.Keys)
            if (!_counted.ContainsKey(pfn))
            {
                Count(pfn);
                LastCounted++;
            }
        LastDropped = _drop.Count;
        if (_broken) return false;
        for (int w = 0; w < used.Length; w++) used[w] |= _held[w];
        foreach (ulong pfn in _upper) Set(used, pfn);
        foreach (ulong pfn in _named.Keys) Set(used, pfn);
        return true;
    }

    /// <summary>The upper levels from <paramref name="table"/> (level <paramref name="level"/> ≥ 2): table pages
    /// into <see cref="_upper"/>, leaf tables into <see cref="_named"/>; leaf tables in the platform's area (its own,
    /// not the restore's to write) are read each time, into <paramref name="used"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool NameLeafTables(ulong table, int level, Span<ulong> used)
    {
        var entries = Read(table);
        for (int i = 0; i < Entries; i++)
        {
            ulong e = entries[i];
            if ((e & PageTableEditor.Present) == 0) continue;
            ulong child = e & PageTableEditor.AddressMask, pfn = PageTableEditor.FrameOf(e);
            if (level > 2)
            {
                if (pfn < _limit) _upper.Add(pfn);
                if (!NameLeafTables(child, level - 1, used)) return false;
                continue;
            }
            var leaves = Read(child); // a table past RAM faults here, as a walk's would
            if (pfn < _first)
            {
                foreach (ulong leaf in leaves)
                    if ((leaf & PageTableEditor.HasFrame) != 0 && PageTableEditor.FrameOf(leaf) < _limit) Set(used, PageTableEditor.FrameOf(leaf));
                continue;
            }
            ref int times = ref CollectionsMarshal.GetValueRefOrAddDefault(_named, pfn, out _);
            if (++times > 1) return false; // a leaf table named twice: never in a kernel's tables
        }
        return true;
    }

    private ReadOnlySpan<ulong> Read(ulong address) =>
        MemoryMarshal.Cast<byte, ulong>(_ram.PhysicalRead(address, (int)GuestMemory.PageSize));

    private static void Set(Span<ulong> bitmap, ulong pfn) => bitmap[(int)(pfn >> 6)] |= 1UL << (int)(pfn & 63);

    private bool LooksLikeLeafTable(ulong pfn)
    {
        bool any = false;
        foreach (ulong e in Read(pfn * GuestMemory.PageSize))
        {
            if (e == 0) continue;
            if ((e & PageTableEditor.HasFrame) == 0 || (e & ~LeafBits) != 0 || PageTableEditor.FrameOf(e) >= _limit) return false;
            any = true;
        }
        return any;
    }

    private void Count(ulong pfn)
    {
        var shadow = _spare.Count > 0 ? _spare.Pop() : new ulong[Entries];
        Read(pfn * GuestMemory.PageSize).CopyTo(shadow);
        foreach (ulong e in shadow) Hold(e, +1);
        _counted[pfn] = shadow;
    }

    private void Uncount(ulong pfn)
    {
        var shadow = _counted[pfn];
        foreach (ulong e in shadow) Hold(e, -1);
        _counted.Remove(pfn);
        _spare.Push(shadow);
    }

    private void Refresh(ulong pfn, ulong[] shadow)
    {
        var now = Read(pfn * GuestMemory.PageSize);
        for (int i = 0; i < Entries; i++)
        {
            ulong e = now[i];
            if (e == shadow[i]) continue;
            Hold(shadow[i], -1);
            Hold(e, +1);
            shadow[i] = e;
        }
    }

    private void Hold(ulong entry, int delta)
    {
        if ((entry & PageTableEditor.HasFrame) == 0) return;
        ulong pfn = PageTableEditor.FrameOf(entry);
        if (pfn >= _limit) return;
        ref int n = ref _refs[pfn];
        if (delta > 0 && n == int.MaxValue) { _broken = true; return; }
        n += delta;
        ulong bit = 1UL << (int)(pfn & 63);
        if (n == 0) _held[pfn >> 6] &= ~bit;
        else _held[pfn >> 6] |= bit;
    }
}
