using System.Runtime.CompilerServices;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>How a fault on a program address was settled (<see cref="AddressSpace.ResolveFault"/>).</summary>
public enum FaultResolution
{
    /// <summary>The page is backed now: resume the program at the faulting instruction.</summary>
    Resolved,
    /// <summary>No mapping there: SIGSEGV, SEGV_MAPERR.</summary>
    NotMapped,
    /// <summary>A mapping that does not allow the access: SIGSEGV, SEGV_ACCERR.</summary>
    NotAllowed,
    /// <summary>Allowed, but no frame is left: SIGBUS.</summary>
    OutOfMemory,
}

/// <summary>The paged model: frames on first touch, page tables edited here, the platform told what changed.</summary>
public sealed partial class AddressSpace
{
    /// <summary>Pages a fault may bring in around the faulting one (an aligned run within one protection).</summary>
    public const int FaultAround = 16;

    /// <summary>Frames kept free for page tables and the kernel's own fault-ins when faulting around.</summary>
    private const ulong FaultAroundReserve = 64;

    /// <summary>The frames of guest RAM (paged model only).</summary>
    public FrameAllocator? Frames { get; }

    /// <summary>The page tables (paged model only).</summary>
    public PageTableEditor? Tables { get; }

    /// <summary>
    /// Paged model: told (start, length) when translations of those pages were taken away or changed (unmapped,
    /// protection changed, moved, freed), so a platform drops whatever it cached before the program runs again.
    /// </summary>
    public Action<ulong, ulong>? TranslationChanged { get; set; }

    /// <summary>
    /// Paged model: told (start, first frame, pages, prot) for each physically contiguous run a fault brought in, so
    /// a platform that cannot walk the tables itself (ptrace) maps them.
    /// </summary>
    public Action<ulong, ulong, ulong, int>? PagesMapped { get; set; }


    /// <summary>
    /// Paged model on a platform whose vCPUs drop a cached translation only when its frame is zapped (a shadow MMU:
    /// kvm_pvm): told (first frame, count) for frames still in use whose translation was reduced or moved (mprotect
    /// taking a right away, mremap moving pages), after the tables changed. Frames freed need no call: releasing one
    /// punches it out of the memfd, which zaps it by itself. Set with <see cref="KeepPageTables"/>.
    /// </summary>
    public Action<ulong, ulong>? FramesRetired { get; set; }

    /// <summary>Never free a table page nor change the tables' shape (<see cref="PageTableEditor.KeepTables"/>): on a
    /// shadow MMU a table page that moves or comes back as another table leaves a stale shadow linked under two regions,
    /// which only a memory-slot re-add drops, and that cannot run while sibling vCPUs do.</summary>
    public bool KeepPageTables
    {
        get => Tables?.KeepTables ?? false;
        set
        {
            if (Tables != null) Tables.KeepTables = value;
        }
    }

    /// <summary>Collects frame runs for <see cref="FramesRetired"/> (contiguous frames merged).</summary>
    private sealed class FrameRuns(Action<ulong, ulong>? sink)
    {
        private ulong _start, _count;

        public void Add(ulong pfn)
        {
            if (sink == null) return;
            if (_count > 0 && pfn == _start + _count) { _count++; return; }
            Flush();
            _start = pfn;
            _count = 1;
        }

        public void Flush()
        {
            if (_count > 0) sink!(_start, _count);
            _count = 0;
        }
    }

    /// <summary>Whether <paramref name="next"/> grants less than <paramref name="old"/> (present, writable or executable lost).</summary>
    private static bool Reduces(ulong old, ulong next) =>
        ((old & PageTableEditor.Present) != 0 && (next & PageTableEditor.Present) == 0)
        || ((old & PageTableEditor.Writable) != 0 && (next & PageTableEditor.Writable) == 0)
        || ((old & PageTableEditor.NoExecute) == 0 && (next & PageTableEditor.NoExecute) != 0);

    private void Free(ulong start, ulong end)
    {
        if (!Paged)
        {
            Memory.Zero(start, end - start);
            return;
        }
        ulong runStart = 0, runLength = 0;
        var frames = Frames!;
        Tables!.Edit(start, end, (_, e) =>
        {
            if ((e & PageTableEditor.HasFrame) == 0) return 0;
            ulong pfn = PageTableEditor.FrameOf(e);
            if (runLength > 0 && pfn == runStart + runLength) runLength++;
            else
            {
                if (runLength > 0) frames.ReleaseRun(runStart, runLength);
                runStart = pfn;
                runLength = 1;
            }
            return 0;
        });
        if (runLength > 0) frames.ReleaseRun(runStart, runLength);
        TranslationChanged?.Invoke(start, end - start);
    }

    /// <summary>Rewrites the entries of [start, end) for the protections now in force.</summary>
    private void Reprotect(ulong start, ulong end)
    {
        var retired = new FrameRuns(FramesRetired);
        Tables!.Edit(start, end, (va, e) =>
        {
            int prot = ProtectionAt(va);
            if (prot < 0) return e;
            ulong next = PageTableEditor.Leaf(PageTableEditor.FrameOf(e), prot);
            if ((e & PageTableEditor.HasFrame) != 0 && Reduces(e, next)) retired.Add(PageTableEditor.FrameOf(e));
            return next;
        });
        retired.Flush();
        TranslationChanged?.Invoke(start, end - start);
    }

    /// <summary>
    /// A fault at <paramref name="addr"/> (a write when <paramref name="write"/>, an instruction fetch when
    /// <paramref name="exec"/>): when a region allows the access,
    /// backs the page (and, RAM permitting, the aligned run of <see cref="FaultAround"/> pages around it with the same
    /// protection) with frames, zeroed, and tells <see cref="PagesMapped"/>.
    /// </summary>
    public FaultResolution ResolveFault(ulong addr, bool write, bool exec = false)
    {
        if (!Paged) return ProtectionAt(addr) < 0 ? FaultResolution.NotMapped : FaultResolution.NotAllowed;
        ulong page = addr & ~(PageSize - 1);
        int prot = ProtectionAt(page);
        if (prot < 0) return FaultResolution.NotMapped;
        if (prot == 0 || (write && (prot & ProtWrite) == 0) || (exec && (prot & ProtExec) == 0)) return FaultResolution.NotAllowed;
        var frames = Frames!;
        var tables = Tables!;

        ulong first = page, last = page + PageSize;
        if (frames.Free > FaultAroundReserve + 2 * FaultAround)
        {
            ulong block = page & ~(FaultAround * PageSize - 1);
            while (first > block && ProtectionAt(first - PageSize) == prot) first -= PageSize;
            while (last < block + FaultAround * PageSize && ProtectionAt(last) == prot) last += PageSize;
        }
        // Back the pages with no frame yet, with one run of contiguous frames when RAM has one.
        ulong missing = 0;
        for (ulong va = first; va < last; va += PageSize)
            if ((tables.Get(va) & PageTableEditor.HasFrame) == 0) missing++;
        ulong run = missing > 1 ? frames.AllocateRun(missing) : 0;
        for (ulong va = first; va < last; va += PageSize)
        {
            ulong e = tables.Get(va);
            ulong pfn;
            if ((e & PageTableEditor.HasFrame) != 0) pfn = PageTableEditor.FrameOf(e);
            else if (run != 0) pfn = run++;
            else if ((pfn = frames.Allocate()) == 0)
            {
                if (va <= page) return FaultResolution.OutOfMemory;
                last = va;
                break;
            }
            if (!tables.Set(va, PageTableEditor.Leaf(pfn, prot)))
            {
                frames.Release(pfn);
                if (va <= page) return FaultResolution.OutOfMemory;
                last = va;
                break;
            }
        }
        if (PagesMapped is { } sink) ReportRuns(first, last, prot, sink);
        return FaultResolution.Resolved;
    }

    /// <summary>Tells <paramref name="sink"/> [first, last) as runs of contiguous frames.</summary>
    private void ReportRuns(ulong first, ulong last, int prot, Action<ulong, ulong, ulong, int> sink)
    {
        ulong runVa = first, runPfn = PageTableEditor.FrameOf(Tables!.Get(first)), runPages = 1;
        for (ulong va = first + PageSize; va < last; va += PageSize)
        {
            ulong pfn = PageTableEditor.FrameOf(Tables.Get(va));
            if (pfn == runPfn + runPages) { runPages++; continue; }
            sink(runVa, runPfn, runPages, prot);
            runVa = va; runPfn = pfn; runPages = 1;
        }
        sink(runVa, runPfn, runPages, prot);
    }

    /// <summary>No physical address: the page has no frame (it reads as zeros).</summary>
    public const ulong NoFrame = ulong.MaxValue;

    /// <summary>
    /// The guest-physical address behind program address <paramref name="addr"/>, for the kernel's copies (the
    /// caller checked the protection). A page with no frame is <see cref="NoFrame"/> unless <paramref name="allocate"/>,
    /// which backs it as a program's touch would (EFAULT when RAM is full).
    /// </summary>
    public ulong Translate(ulong addr, bool allocate)
    {
        if (!Paged) return addr;
        ulong page = addr & ~(PageSize - 1);
        ulong e = Tables!.Get(page);
        if ((e & PageTableEditor.HasFrame) != 0) return PageTableEditor.FrameOf(e) * PageSize + (addr - page);
        if (!allocate) return NoFrame;
        ulong pfn = Frames!.Allocate();
        if (pfn == 0 || !Tables.Set(page, PageTableEditor.Leaf(pfn, Math.Max(0, ProtectionAt(page)))))
        {
            if (pfn != 0) Frames.Release(pfn);
            throw new GuestFaultException(addr);
        }
        return pfn * PageSize + (addr - page);
    }

    /// <summary>Writes program memory as the kernel, whatever the protection (the loader, a file mapping's contents).</summary>
    public void KernelWrite(ulong addr, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            int n = (int)Math.Min((ulong)data.Length, PageSize - (addr & (PageSize - 1)));
            data[..n].CopyTo(Memory.Physical(Translate(addr, allocate: true), n));
            data = data[n..];
            addr += (ulong)n;
        }
    }

    /// <summary>
    /// mremap's move: a new mapping at [to, to+newLength) takes the pages of [from, from+oldLength) by moving their
    /// page-table entries (no copy), and the old range is unmapped.
    /// </summary>
    public void Move(ulong from, ulong oldLength, ulong to, ulong newLength)
    {
        var m = MappingAt(from) ?? throw new InvalidOperationException("mremap of an unmapped range");
        Map(to, to + newLength, m.Prot, m.Flags);
        if (!Paged)
        {
            for (ulong done = 0; done < oldLength;)
            {
                int chunk = (int)Math.Min(oldLength - done, 1UL << 30);
                Memory.PhysicalRead(from + done, chunk).CopyTo(Memory.Physical(to + done, chunk)); // whatever the protection
                done += (ulong)chunk;
            }
            Unmap(from, from + oldLength);
            return;
        }
        var tables = Tables!;
        bool full = false;
        var moved = new FrameRuns(FramesRetired);
        tables.Edit(from, from + oldLength, (va, e) =>
        {
            if (full || (e & PageTableEditor.HasFrame) == 0) return e;
            if (!tables.Set(to + (va - from), PageTableEditor.Leaf(PageTableEditor.FrameOf(e), m.Prot))) { full = true; return e; }
            if ((e & PageTableEditor.Present) != 0) moved.Add(PageTableEditor.FrameOf(e));
            return 0;
        });
        moved.Flush(); // the frames' old addresses must not reach them any more
        Unmap(from, from + oldLength); // frees whatever could not move (RAM full for a table): it reads as zeros
    }

    /// <summary>Bytes counted against RAM: writable private or shared mappings without MAP_NORESERVE, the image's
    /// segments whatever their protection (their pages hold frames: there is no page cache for them to live in, so
    /// read-only text costs RAM here as writable data does), and the heap.</summary>
    public ulong Committed
    {
        get
        {
            ulong total = PageUp(Brk) - BrkStart;
            foreach (var m in _maps) if (Accountable(m)) total += m.End - m.Start;
            return total;
        }
    }

    private static bool Accountable(in Mapping m) =>
        (m.Flags & MapFlags.Image) != 0 || (m.Prot & ProtWrite) != 0 && (m.Flags & MapFlags.NoReserve) == 0;

    /// <summary>
    /// Whether <paramref name="bytes"/> more may be committed, less what accountable mappings in [start, end) hold now
    /// (a MAP_FIXED replaces them): never past the program's frames (paged model; the identity model is bounded by
    /// the address space itself).
    /// </summary>
    public bool MayCommit(ulong bytes, ulong start = 0, ulong end = 0)
    {
        if (!Paged || bytes == 0) return true;
        ulong now = Committed;
        foreach (var m in _maps)
            if (Accountable(m) && m.Start < end && start < m.End) now -= Math.Min(m.End, end) - Math.Max(m.Start, start);
        return now + bytes <= Frames!.Total * PageSize;
    }

    private ulong[]? _restoreWrites; // frames written by a restore since the last one (NoteRestoreWrite)
    private ulong[]? _restoreReach;  // Restore's scratch: the frames the tables hold

    private LeafTableLedger? _ledger;  // the leaf tables as the restores so far left them (paged model)

    /// <summary>Whether <see cref="NoteRestoreWrite"/> noted <paramref name="pfn"/> since the last restore (tests).</summary>
    internal bool RestoreWriteNoted(ulong pfn) =>
        _restoreWrites is { } w && (pfn >> 6) < (ulong)w.Length && (Volatile.Read(ref w[(int)(pfn >> 6)]) >> (int)(pfn & 63) & 1) != 0;

    private ulong[] RestoreWrites() => LazyInitializer.EnsureInitialized(ref _restoreWrites, () => new ulong[Memory.BitmapWords]);

    private LeafTableLedger Ledger() =>
        LazyInitializer.EnsureInitialized(ref _ledger, () => new LeafTableLedger(Memory) { EditsAtSync = Tables!.Edits });

    private LeafTableLedger NewLedger() => _ledger = new LeafTableLedger(Memory) { EditsAtSync = Tables!.Edits };

    /// <summary>The ledger, or a new one if the kernel edited the tables since it last matched them.</summary>
    private LeafTableLedger CurrentLedger()
    {
        var ledger = Ledger();
        return ledger.EditsAtSync == Tables!.Edits ? ledger : NewLedger();
    }

    /// <summary>
    /// Before the state of a checkpoint being restored arrives (a migration's rounds, a backup's initial
    /// synchronisation): does now, on the pages written so far, the bookkeeping of the page tables that
    /// <see cref="Restore"/> would otherwise do whole, so that the restore only redoes what changed since. Costs
    /// O(pages written since the last call); changes nothing the program can see. Paged model; else nothing.
    /// </summary>
    public void PrepareRestore()
    {
        if (!Paged) return;
        var ledger = CurrentLedger();
        ledger.Prepare(guess: true);
        ledger.EditsAtSync = Tables!.Edits;
        if (_restoreReach == null)
        {
            // The restore's bitmaps, one bit per frame, are read or written whole (512 KiB at 16 GiB): their pages
            // are faulted in now, not in the restore (~128 faults, 1-3 ms on a nested machine).
            _restoreReach = new ulong[Memory.BitmapWords];
            TouchPages(_restoreReach);
            TouchPages(RestoreWrites());
            ledger.TouchBitmaps();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per restore, over a bitmap of all RAM
    private static void OrInto(Span<ulong> into, ReadOnlySpan<ulong> bits)
    {
        for (int w = 0; w < into.Length && w < bits.Length; w++) into[w] |= bits[w];
    }

    /// <summary>Writes one word of each page of <paramref name="words"/> (an OR of nothing: the content stays).</summary>
    internal static void TouchPages(ulong[] words)
    {
        for (int i = 0; i < words.Length; i += (int)(PageSize / sizeof(ulong))) Interlocked.Or(ref words[i], 0);
    }

    /// <summary>Drops what <see cref="PrepareRestore"/> and restores kept (the domain runs: no restore comes).</summary>
    public void ForgetRestoreState()
    {
        _ledger = null;
        _restoreReach = null;
    }

    /// <summary>
    /// Notes that a restore wrote frame <paramref name="pfn"/> (a checkpoint's page), so that the next
    /// <see cref="Restore"/> releases it if no table holds it. Every write to guest RAM that does not go through the
    /// kernel's own paths (the frame allocator, the tables) before a restore must be noted. Thread-safe.
    /// </summary>
    public void NoteRestoreWrite(ulong pfn)
    {
        if (Paged) Ledger().Note(pfn);
        var written = RestoreWrites();
        int w = (int)(pfn >> 6);
        if ((uint)w >= (uint)written.Length) return;
        ulong bit = 1UL << (int)(pfn & 63);
        if ((Volatile.Read(ref written[w]) & bit) == 0) Interlocked.Or(ref written[w], bit);
    }

    /// <summary>Restores the bookkeeping from a checkpoint.</summary>
    /// <param name="layout">the checkpoint's model and stack/mmap layout; null: an identity-model image (older checkpoints)</param>
    /// <param name="rootEntries">the root table of a paged image</param>
    /// <param name="imageSegments">whether the checkpoint's mappings hold the image's segments (kernel state version 7
    /// on); before, the image was one read-write-execute region from its start to the heap, and stays so</param>
    public void Restore(ulong imageStart, ulong brkStart, ulong brk, IEnumerable<Mapping> maps, SavedLayout? layout,
        IEnumerable<(int Index, ulong Entry)>? rootEntries, bool imageSegments = true)
    {
        ImageStart = imageStart;
        BrkStart = brkStart;
        Brk = brk;
        _maps.Clear();
        _maps.AddRange(maps.OrderBy(m => m.Start));
        if (!imageSegments && brkStart > imageStart)
        {
            int at = 0;
            while (at < _maps.Count && _maps[at].Start < imageStart) at++;
            _maps.Insert(at, new Mapping(imageStart, brkStart, ProtRead | ProtWrite | ProtExec, MapFlags.Image | MapFlags.File | MapFlags.Accounted));
        }
        bool pagedImage = layout is { Paged: true };
        if (pagedImage && !Paged)
            throw new SandboxException("the checkpoint's program uses a 47-bit paged address space, which this platform does not run yet (it runs guest memory identity-mapped); restore it on the ptrace platform");
        if (layout is { } l)
        {
            StackTop = l.StackTop;
            StackSize = l.StackSize;
            MmapBase = l.MmapBase;
        }
        else
        {
            StackTop = Memory.Size;
            StackSize = Math.Min(8UL << 20, Memory.Size / 8) & ~(PageSize - 1);
            MmapBase = StackTop - StackSize;
        }
        if (Paged)
        {
            var frames = Frames!;
            if (pagedImage)
            {
                // The frames in use are what the tables hold; a frame no table holds must read as zeros when handed
                // out. Free frames are holes already (released frames are punched), but for those written since the
                // last restore (the checkpoint's pages) and those in use until now: only these need looking at.
                var candidates = RestoreWrites();
                OrInto(candidates, frames.UsedBits);
                var reach = _restoreReach ??= new ulong[Memory.BitmapWords];
                var ledger = CurrentLedger();
                Tables!.LoadRoot(rootEntries ?? []);
                bool fresh = ledger.Counted == 0;
                if (!ledger.Sync(reach))
                {
                    ledger = NewLedger();
                    Array.Clear(reach);
                    Tables.MarkReachable(reach);
                    PhaseTrace.Mark("M tables walked whole (the ledger could not say)");
                }
                else if (PhaseTrace.On)
                    PhaseTrace.Mark($"M tables: {ledger.Counted} leaf tables ({(fresh ? "none counted before" : "ledger kept")}), {ledger.LastCounted} counted now, {ledger.LastDropped} dropped");
                ledger.EditsAtSync = Tables.Edits;
                frames.Load(reach);
                frames.ReleaseUnused(candidates);
                Array.Clear(candidates);
                PhaseTrace.Mark("M frame allocator rebuilt");
            }
            else
            {
                frames.Reset();
                BuildIdentityTables();
                // A frame no table holds must read as zeros when handed out.
                var populated = new ulong[Memory.BitmapWords];
                Memory.MarkPopulated(populated, GuestMemory.UserBase);
                frames.ReleaseUnused(populated);
                if (_restoreWrites != null) Array.Clear(_restoreWrites);
                _ledger = null;
            }
            TranslationChanged?.Invoke(GuestMemory.UserBase, TaskSize - GuestMemory.UserBase);
        }
        PublishAll();
    }

    /// <summary>
    /// An identity-model image in the paged model: every page of a region that holds data keeps its frame at its own
    /// address (guest virtual = physical for it); the rest is backed on first touch like any page.
    /// </summary>
    private void BuildIdentityTables()
    {
        var populated = new ulong[Memory.BitmapWords];
        Memory.MarkPopulated(populated, GuestMemory.UserBase);
        var pages = new List<ulong>();
        for (ulong pfn = GuestMemory.UserBase / PageSize; pfn < Memory.Size / PageSize; pfn++)
        {
            if ((populated[pfn >> 6] & (1UL << (int)(pfn & 63))) == 0) continue;
            if (ProtectionAt(pfn * PageSize) < 0) continue;
            Frames!.MarkUsed(pfn);
            pages.Add(pfn);
        }
        // The tables take frames no region holds: those must read as zeros first.
        for (ulong pfn = GuestMemory.UserBase / PageSize; pfn < Memory.Size / PageSize; pfn++)
            if ((populated[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0 && !Frames!.IsUsed(pfn)) Frames.ReleaseRun(pfn, 1);
        if (!Tables!.InitRoot()) throw new SandboxException("the checkpoint's memory leaves no room for its page tables; restore it with more memory");
        foreach (ulong pfn in pages)
            if (!Tables.Set(pfn * PageSize, PageTableEditor.Leaf(pfn, ProtectionAt(pfn * PageSize))))
                throw new SandboxException("the checkpoint's memory leaves no room for its page tables; restore it with more memory");
    }

    /// <summary>What a checkpoint carries of the layout (kernel state version 4 on).</summary>
    public SavedLayout Layout => new(Paged, StackTop, StackSize, MmapBase);
}

/// <summary>The address space's model and the places of its stack and mmap area, as a checkpoint carries them.</summary>
public readonly record struct SavedLayout(bool Paged, ulong StackTop, ulong StackSize, ulong MmapBase);
