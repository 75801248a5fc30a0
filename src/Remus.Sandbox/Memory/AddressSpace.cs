using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>What kind of memory a mapping is (mmap's flags that outlive the call).</summary>
[Flags]
public enum MapFlags
{
    None = 0,
    /// <summary>MAP_SHARED (else private).</summary>
    Shared = 1,
    /// <summary>A file's contents (else anonymous).</summary>
    File = 2,
    /// <summary>MAP_NORESERVE: not counted against RAM; a touch with no frame left is SIGBUS.</summary>
    NoReserve = 4,
    /// <summary>A piece of the program image (a PT_LOAD segment, mapped by the loader with the segment's protection):
    /// with <see cref="File"/> the pages the program file backs (/proc/self/maps names the program), without it the
    /// segment's .bss past its last file page (anonymous, as Linux maps it).</summary>
    Image = 8,
    /// <summary>Linux's VM_ACCOUNT on an image piece: a private mapping that is or was writable (mprotect taking the write
    /// right away keeps it). /proc/self/maps does not show two neighbours that differ in it as one line.</summary>
    Accounted = 16,
}

/// <summary>One mapping the program asked for (mmap), kept for munmap/mremap and for checkpoints.</summary>
public readonly record struct Mapping(ulong Start, ulong End, int Prot, MapFlags Flags = MapFlags.None);

/// <summary>
/// The program's address space: the image and heap (brk), the stack, and the mappings (VMAs, sorted, binary-searched).
/// Two models (docs/memory.md):
/// <list type="bullet">
/// <item><b>paged</b> (<see cref="Paged"/>): a Linux-like 47-bit address space; guest RAM is physical memory, handed out
/// frame by frame on first touch (<see cref="ResolveFault"/>) through page tables in guest RAM
/// (<see cref="PageTableEditor"/>, <see cref="FrameAllocator"/>). mmap places top-down from <see cref="MmapBase"/>,
/// below the stack gap; many GiB of PROT_NONE cost nothing.</item>
/// <item><b>identity</b>: guest virtual = guest physical; the address space is RAM (the platforms' self-tests, and
/// checkpoints of earlier builds before they are restored): <c>2 MiB ... image ... brk → ... ← mmap | stack | top of RAM</c>.</item>
/// </list>
/// The image is mappings of its own, one per PT_LOAD segment (and its .bss), with the segment's protection
/// (<see cref="MapFlags.Image"/>): text r-x, read-only data r--, data rw-, which mprotect changes as any mapping's
/// (libc's RELRO). Only the heap, [BrkStart, PageUp(Brk)), and the stack are regions of their own, read-write.
/// Freed memory reads as zeros again. Protections are enforced on the kernel's own accesses (see
/// <see cref="UserMemory"/>) and on the program's by the platform (<see cref="ProtectionChanged"/> in the identity model,
/// the page tables and <see cref="TranslationChanged"/> in the paged one).
/// </summary>
public sealed partial class AddressSpace
{
    public const ulong PageSize = GuestMemory.PageSize;
    public const ulong PieBase = 0x400000;
    /// <summary>The top of a Linux x86-64 user address space (TASK_SIZE: 47 bits less a guard page).</summary>
    public const ulong TaskSize = 0x7FFF_FFFF_F000;
    /// <summary>Linux's smallest gap between the stack top and the mmap base (MIN_GAP).</summary>
    public const ulong StackGap = 128UL << 20;

    private readonly List<Mapping> _maps = [];

    public AddressSpace(GuestMemory memory, bool paged = false)
    {
        Memory = memory;
        Paged = paged;
        if (paged)
        {
            Frames = new FrameAllocator(memory);
            Tables = new PageTableEditor(memory, Frames);
            if (!Tables.InitRoot()) throw new SandboxException("the domain's memory is too small for its page tables");
            StackTop = TaskSize;
            StackSize = 8UL << 20;
            MmapBase = TaskSize - StackGap;
        }
        else
        {
            StackTop = memory.Size;
            StackSize = Math.Min(8UL << 20, memory.Size / 8) & ~(PageSize - 1);
            MmapBase = StackTop - StackSize;
        }
    }

    public GuestMemory Memory { get; }

    /// <summary>Whether the program's addresses are translated through page tables (else guest virtual = physical).</summary>
    public bool Paged { get; }

    public ulong ImageStart { get; set; }
    public ulong BrkStart { get; set; }
    public ulong Brk { get; set; }
    public ulong StackTop { get; private set; }
    public ulong StackSize { get; private set; }
    public ulong StackBottom => StackTop - StackSize;
    /// <summary>Where top-down placement of mappings starts.</summary>
    public ulong MmapBase { get; private set; }
    /// <summary>The end of the program's address space.</summary>
    public ulong Limit => Paged ? TaskSize : Memory.Size;
    public IReadOnlyList<Mapping> Mappings => _maps;

    /// <summary>
    /// Identity model: told (start, length, prot) whenever the program's permissions on a range change (prot -1:
    /// nothing mapped), so a vCPU platform that can enforce them does (see <see cref="IVcpu.ProtectRange"/>). Set by
    /// the kernel once the vCPU exists; <see cref="PublishAll"/> then tells it the whole picture.
    /// </summary>
    public Action<ulong, ulong, int>? ProtectionChanged { get; set; }

    /// <summary>True when [addr, addr+len) lies in the program's address space (above the platform's 2 MiB).</summary>
    public bool IsUserRange(ulong addr, ulong len) => addr >= GuestMemory.UserBase && addr <= Limit && len <= Limit - addr;

    /// <summary>Tells <see cref="ProtectionChanged"/> the permissions of every page of [start, end), in runs.</summary>
    public void Publish(ulong start, ulong end)
    {
        var sink = ProtectionChanged;
        if (sink == null || Paged) return;
        start = Math.Max(start, GuestMemory.UserBase) & ~(PageSize - 1);
        end = Math.Min(PageUp(end), Memory.Size);
        while (start < end)
        {
            int prot = ProtectionAt(start, out ulong regionEnd);
            ulong runEnd = prot >= 0 ? regionEnd : NextRegionStart(start);
            runEnd = Math.Min(Math.Max(runEnd, start + PageSize), end);
            // Neighbours with the same protection go in one call.
            while (runEnd < end && ProtectionAt(runEnd, out ulong nextEnd) == prot)
                runEnd = Math.Min(end, prot >= 0 ? nextEnd : NextRegionStart(runEnd));
            sink(start, runEnd - start, prot);
            start = runEnd;
        }
    }

    /// <summary>Tells <see cref="ProtectionChanged"/> the permissions of all of guest user memory.</summary>
    public void PublishAll() => Publish(GuestMemory.UserBase, Memory.Size);

    /// <summary>The first address above <paramref name="addr"/> (which is in no region) where a region starts.</summary>
    private ulong NextRegionStart(ulong addr)
    {
        ulong next = Limit;
        if (BrkStart > addr && PageUp(Brk) > BrkStart) next = Math.Min(next, BrkStart);
        if (StackBottom > addr) next = Math.Min(next, StackBottom);
        foreach (var m in _maps)
            if (m.Start > addr) { next = Math.Min(next, m.Start); break; }
        return next;
    }

    public static ulong PageUp(ulong x) => (x + PageSize - 1) & ~(PageSize - 1);

    /// <summary>The lowest address brk may not reach: the lowest mapping above the heap, or the stack.</summary>
    private ulong BrkLimit
    {
        get
        {
            foreach (var m in _maps) if (m.End > BrkStart) return Math.Min(m.Start, StackBottom);
            return StackBottom;
        }
    }

    /// <summary>brk(2): returns the new break, or the old one when the request cannot be met.</summary>
    public ulong SetBrk(ulong requested)
    {
        if (requested < BrkStart || PageUp(requested) > BrkLimit) return Brk;
        ulong before = PageUp(Brk), after = PageUp(requested);
        if (after < before) Free(after, before);
        Brk = requested;
        if (after != before) Publish(Math.Min(before, after), Math.Max(before, after));
        return Brk;
    }

    /// <summary>Finds room for <paramref name="length"/> bytes, top-down from <see cref="MmapBase"/>; 0 when there is none.</summary>
    public ulong FindFree(ulong length)
    {
        ulong floor = Math.Max(PageUp(Brk), GuestMemory.UserBase);
        ulong top = MmapBase;
        for (int i = _maps.Count - 1; i >= -1; i--)
        {
            if (i >= 0 && _maps[i].Start >= top) continue; // above the search
            ulong low = i >= 0 ? Math.Max(_maps[i].End, floor) : floor;
            if (low <= top && top - low >= length) return top - length;
            if (i < 0 || _maps[i].End <= floor) break;
            top = _maps[i].Start;
        }
        return 0;
    }

    /// <summary>Whether [start, end) overlaps nothing: no mapping, not the image and heap, not the stack.</summary>
    public bool IsFree(ulong start, ulong end)
    {
        if (!IsUserRange(start, end - start)) return false;
        if (!Paged && (start < PageUp(Brk) || end > StackBottom)) return false;
        if (!MayMapFixed(start, end)) return false;
        foreach (var m in _maps) if (m.Start < end && start < m.End) return false;
        return true;
    }

    /// <summary>Whether MAP_FIXED may replace [start, end): inside the address space, clear of the image, heap and stack.</summary>
    public bool MayMapFixed(ulong start, ulong end)
    {
        if (!IsUserRange(start, end - start)) return false;
        if (!Paged) return start >= BrkStart && end <= StackBottom;
        if (start < PageUp(Brk) && ImageStart < end) return false;
        return end <= StackBottom || start >= StackTop;
    }

    /// <summary>Records [start, end) as mapped (replacing what was there); it reads as zeros.</summary>
    public void Map(ulong start, ulong end, int prot, MapFlags flags = MapFlags.None)
    {
        Forget(start, end);
        if (!Paged) Memory.Zero(start, end - start);
        int i = 0;
        while (i < _maps.Count && _maps[i].Start < start) i++;
        _maps.Insert(i, new Mapping(start, end, prot, flags));
        Publish(start, end);
    }

    /// <summary>Forgets [start, end), splitting mappings that straddle it, and frees the memory.</summary>
    public void Unmap(ulong start, ulong end)
    {
        Forget(start, end);
        Publish(start, end);
    }

    private void Forget(ulong start, ulong end)
    {
        bool any = false;
        for (int i = 0; i < _maps.Count; i++)
        {
            var m = _maps[i];
            if (m.End <= start || m.Start >= end) continue;
            ulong cutStart = Math.Max(m.Start, start), cutEnd = Math.Min(m.End, end);
            if (!Paged) Memory.Zero(cutStart, cutEnd - cutStart);
            any = true;
            _maps.RemoveAt(i);
            if (m.End > cutEnd) _maps.Insert(i, m with { Start = cutEnd });
            if (m.Start < cutStart) _maps.Insert(i, m with { End = cutStart });
            else i--;
        }
        if (any && Paged) Free(start, end);
    }

    /// <summary>Whether [start, end) is entirely covered by mappings.</summary>
    public bool IsMapped(ulong start, ulong end)
    {
        ulong at = start;
        foreach (var m in _maps)
        {
            if (m.End <= at) continue;
            if (m.Start > at) return false;
            at = m.End;
            if (at >= end) return true;
        }
        return at >= end;
    }

    /// <summary>The mapping holding <paramref name="addr"/>, if any.</summary>
    public Mapping? MappingAt(ulong addr)
    {
        int i = IndexAt(addr);
        return i >= 0 ? _maps[i] : null;
    }

    private int IndexAt(ulong addr)
    {
        int lo = 0, hi = _maps.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var m = _maps[mid];
            if (addr < m.Start) hi = mid - 1;
            else if (addr >= m.End) lo = mid + 1;
            else return mid;
        }
        return -1;
    }

    public void SetProtection(ulong start, ulong end, int prot)
    {
        bool any = false;
        for (int i = 0; i < _maps.Count; i++)
        {
            var m = _maps[i];
            if (m.End <= start || m.Start >= end || m.Prot == prot) continue;
            ulong a = Math.Max(m.Start, start), b = Math.Min(m.End, end);
            _maps.RemoveAt(i);
            var parts = new List<Mapping>(3);
            if (m.Start < a) parts.Add(m with { End = a });
            parts.Add(m with { Start = a, End = b, Prot = prot, Flags = AccountFor(m.Flags, prot) });
            if (b < m.End) parts.Add(m with { Start = b });
            _maps.InsertRange(i, parts);
            i += parts.Count - 1;
            any = true;
        }
        if (any && Paged) Reprotect(start, end);
        Publish(start, end);
    }

    public const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    /// <summary>An image piece's flags once it has protection <paramref name="prot"/>: private and writable gains
    /// <see cref="MapFlags.Accounted"/> (Linux's VM_ACCOUNT), which losing the right does not take away.</summary>
    public static MapFlags AccountFor(MapFlags flags, int prot) =>
        (flags & (MapFlags.Image | MapFlags.Shared)) == MapFlags.Image && (prot & ProtWrite) != 0 ? flags | MapFlags.Accounted : flags;

    /// <summary>
    /// Maps one piece of the program image (the loader; <paramref name="file"/>: backed by the program file, else the
    /// .bss past it) with the segment's protection; a later piece replaces an earlier one's share of a page, as
    /// binfmt_elf's MAP_FIXED mappings do.
    /// </summary>
    public void MapImage(ulong start, ulong end, int prot, bool file)
    {
        if (end <= start) return;
        Map(start, end, prot, AccountFor(MapFlags.Image | (file ? MapFlags.File : MapFlags.None), prot));
    }

    /// <summary>
    /// The protection of the page holding <paramref name="addr"/> as the program sees it, or -1 when nothing is mapped
    /// there. The heap (up to the page holding the break) and the stack are read-write regions of their own; everything
    /// else, the image's segments included, is the mapping found by binary search over the sorted VMA list.
    /// </summary>
    public int ProtectionAt(ulong addr) => ProtectionAt(addr, out _);

    /// <summary>As <see cref="ProtectionAt(ulong)"/>, also giving where the region holding the address ends.</summary>
    public int ProtectionAt(ulong addr, out ulong regionEnd)
    {
        if (addr >= BrkStart && addr < PageUp(Brk)) { regionEnd = PageUp(Brk); return ProtRead | ProtWrite; }
        if (addr >= StackBottom && addr < StackTop) { regionEnd = StackTop; return ProtRead | ProtWrite; }
        int i = IndexAt(addr);
        if (i >= 0) { regionEnd = _maps[i].End; return _maps[i].Prot; }
        regionEnd = addr;
        return -1;
    }

    /// <summary>
    /// How many bytes from <paramref name="addr"/> on (at most <paramref name="len"/>) the program could read, or
    /// write when <paramref name="write"/>, without a fault: the reach of a copy_from_user/copy_to_user there.
    /// Reading needs any protection but PROT_NONE (x86 pages are readable when writable or executable); writing
    /// needs PROT_WRITE.
    /// </summary>
    public ulong AccessibleLength(ulong addr, ulong len, bool write)
    {
        ulong done = 0;
        while (done < len)
        {
            int prot = ProtectionAt(addr + done, out ulong end);
            if (prot <= 0 || (write && (prot & ProtWrite) == 0)) break;
            done = Math.Min(len, end - addr);
        }
        return done;
    }

    /// <summary>Frees the memory behind [start, end) (madvise DONTNEED/FREE/REMOVE): it reads as zeros again.</summary>
    public void Discard(ulong start, ulong end)
    {
        if (Paged) Free(start, end);
        else Memory.Zero(start, end - start);
    }
}
