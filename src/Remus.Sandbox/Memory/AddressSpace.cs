using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>One mapping the program asked for (mmap), kept for munmap/mremap and for checkpoints.</summary>
public readonly record struct Mapping(ulong Start, ulong End, int Prot);

/// <summary>
/// The program's view of its memory, as bookkeeping over guest RAM (which is mapped once, whole, and never remapped):
/// <code>
///   2 MiB ........ image ........ brk → ......  free  ...... ← mmap (top-down) | stack (StackSize) | top of RAM
/// </code>
/// The program image sits at its link address (static-pie: at <see cref="PieBase"/>); brk grows up from the end of
/// the image; mmap regions are carved top-down below the stack. Freed ranges read as zeros again, as anonymous
/// memory must. Protections are enforced on the kernel's own accesses (see <see cref="UserMemory"/>) and, on platforms
/// that can (ptrace, stock KVM), on the program's (<see cref="ProtectionChanged"/>); on kvm_pvm the vCPU still sees
/// one RWX mapping.
/// </summary>
public sealed class AddressSpace(GuestMemory memory)
{
    public const ulong PageSize = GuestMemory.PageSize;
    public const ulong PieBase = 0x400000;

    private readonly List<Mapping> _maps = [];

    public GuestMemory Memory { get; } = memory;
    public ulong ImageStart { get; set; }
    public ulong BrkStart { get; set; }
    public ulong Brk { get; set; }
    public ulong StackTop => Memory.Size;
    public ulong StackSize { get; } = Math.Min(8UL << 20, memory.Size / 8) & ~(PageSize - 1);
    public ulong StackBottom => StackTop - StackSize;
    public IReadOnlyList<Mapping> Mappings => _maps;

    /// <summary>
    /// Told (start, length, prot) whenever the program's permissions on a range change (prot -1: nothing mapped), so
    /// a vCPU platform that can enforce them does (see <see cref="IVcpu.ProtectRange"/>). Set by the kernel once the
    /// vCPU exists; <see cref="PublishAll"/> then tells it the whole picture.
    /// </summary>
    public Action<ulong, ulong, int>? ProtectionChanged { get; set; }

    /// <summary>Tells <see cref="ProtectionChanged"/> the permissions of every page of [start, end), in runs.</summary>
    public void Publish(ulong start, ulong end)
    {
        var sink = ProtectionChanged;
        if (sink == null) return;
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
        ulong next = Memory.Size;
        if (ImageStart > addr) next = Math.Min(next, ImageStart);
        if (StackBottom > addr) next = Math.Min(next, StackBottom);
        foreach (var m in _maps)
            if (m.Start > addr) { next = Math.Min(next, m.Start); break; }
        return next;
    }

    public static ulong PageUp(ulong x) => (x + PageSize - 1) & ~(PageSize - 1);

    /// <summary>The lowest address brk may not reach: the lowest mapping, or the stack.</summary>
    private ulong BrkLimit => _maps.Count > 0 ? Math.Min(_maps[0].Start, StackBottom) : StackBottom;

    /// <summary>brk(2): returns the new break, or the old one when the request cannot be met.</summary>
    public ulong SetBrk(ulong requested)
    {
        if (requested < BrkStart || PageUp(requested) > BrkLimit) return Brk;
        if (requested < Brk) Memory.Zero(PageUp(requested), PageUp(Brk) - PageUp(requested));
        ulong before = PageUp(Brk);
        Brk = requested;
        if (PageUp(requested) != before) Publish(Math.Min(before, PageUp(requested)), Math.Max(before, PageUp(requested)));
        return Brk;
    }

    /// <summary>Finds room for <paramref name="length"/> bytes, top-down below the stack; 0 when there is none.</summary>
    public ulong FindFree(ulong length)
    {
        ulong top = StackBottom;
        for (int i = _maps.Count - 1; i >= -1; i--)
        {
            ulong lowBound = i >= 0 ? _maps[i].End : PageUp(Brk);
            if (top >= lowBound + length && top - length >= lowBound) return top - length;
            if (i >= 0) top = Math.Min(top, _maps[i].Start);
        }
        return 0;
    }

    public bool IsFree(ulong start, ulong end)
    {
        if (start < PageUp(Brk) || end > StackBottom) return false;
        foreach (var m in _maps) if (m.Start < end && start < m.End) return false;
        return true;
    }

    /// <summary>Records [start, end) as mapped (replacing what was there) and zeroes it.</summary>
    public void Map(ulong start, ulong end, int prot)
    {
        Forget(start, end);
        Memory.Zero(start, end - start);
        int i = 0;
        while (i < _maps.Count && _maps[i].Start < start) i++;
        _maps.Insert(i, new Mapping(start, end, prot));
        Publish(start, end);
    }

    /// <summary>Forgets [start, end), splitting mappings that straddle it, and zeroes the memory freed.</summary>
    public void Unmap(ulong start, ulong end)
    {
        Forget(start, end);
        Publish(start, end);
    }

    private void Forget(ulong start, ulong end)
    {
        for (int i = 0; i < _maps.Count; i++)
        {
            var m = _maps[i];
            if (m.End <= start || m.Start >= end) continue;
            ulong cutStart = Math.Max(m.Start, start), cutEnd = Math.Min(m.End, end);
            Memory.Zero(cutStart, cutEnd - cutStart);
            _maps.RemoveAt(i);
            if (m.End > cutEnd) _maps.Insert(i, m with { Start = cutEnd });
            if (m.Start < cutStart) _maps.Insert(i, m with { End = cutStart });
            else i--;
        }
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

    public void SetProtection(ulong start, ulong end, int prot)
    {
        for (int i = 0; i < _maps.Count; i++)
        {
            var m = _maps[i];
            if (m.End <= start || m.Start >= end || m.Prot == prot) continue;
            ulong a = Math.Max(m.Start, start), b = Math.Min(m.End, end);
            _maps.RemoveAt(i);
            var parts = new List<Mapping>(3);
            if (m.Start < a) parts.Add(m with { End = a });
            parts.Add(new Mapping(a, b, prot));
            if (b < m.End) parts.Add(m with { Start = b });
            _maps.InsertRange(i, parts);
            i += parts.Count - 1;
        }
        Publish(start, end);
    }

    public const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    /// <summary>
    /// The protection of the page holding <paramref name="addr"/> as the program sees it, or -1 when nothing is mapped
    /// there. The image and heap (up to the page holding the break) and the stack are read-write regions of their own;
    /// everything else is the mapping found by binary search over the sorted VMA list.
    /// </summary>
    public int ProtectionAt(ulong addr) => ProtectionAt(addr, out _);

    /// <summary>As <see cref="ProtectionAt(ulong)"/>, also giving where the region holding the address ends.</summary>
    public int ProtectionAt(ulong addr, out ulong regionEnd)
    {
        if (addr >= ImageStart && addr < PageUp(Brk)) { regionEnd = PageUp(Brk); return ProtRead | ProtWrite | ProtExec; }
        if (addr >= StackBottom && addr < StackTop) { regionEnd = StackTop; return ProtRead | ProtWrite; }
        int lo = 0, hi = _maps.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var m = _maps[mid];
            if (addr < m.Start) hi = mid - 1;
            else if (addr >= m.End) lo = mid + 1;
            else { regionEnd = m.End; return m.Prot; }
        }
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

    /// <summary>Restores the bookkeeping from a checkpoint.</summary>
    public void Restore(ulong imageStart, ulong brkStart, ulong brk, IEnumerable<Mapping> maps)
    {
        ImageStart = imageStart;
        BrkStart = brkStart;
        Brk = brk;
        _maps.Clear();
        _maps.AddRange(maps.OrderBy(m => m.Start));
        PublishAll();
    }
}
