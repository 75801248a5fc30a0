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
/// memory must. Protections are recorded, not enforced (one RWX mapping backs all of RAM).
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

    public static ulong PageUp(ulong x) => (x + PageSize - 1) & ~(PageSize - 1);

    /// <summary>The lowest address brk may not reach: the lowest mapping, or the stack.</summary>
    private ulong BrkLimit => _maps.Count > 0 ? Math.Min(_maps[0].Start, StackBottom) : StackBottom;

    /// <summary>brk(2): returns the new break, or the old one when the request cannot be met.</summary>
    public ulong SetBrk(ulong requested)
    {
        if (requested < BrkStart || PageUp(requested) > BrkLimit) return Brk;
        if (requested < Brk) Memory.Zero(PageUp(requested), PageUp(Brk) - PageUp(requested));
        Brk = requested;
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
        Unmap(start, end);
        Memory.Zero(start, end - start);
        int i = 0;
        while (i < _maps.Count && _maps[i].Start < start) i++;
        _maps.Insert(i, new Mapping(start, end, prot));
    }

    /// <summary>Forgets [start, end), splitting mappings that straddle it, and zeroes the memory freed.</summary>
    public void Unmap(ulong start, ulong end)
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
    }

    /// <summary>Restores the bookkeeping from a checkpoint.</summary>
    public void Restore(ulong imageStart, ulong brkStart, ulong brk, IEnumerable<Mapping> maps)
    {
        ImageStart = imageStart;
        BrkStart = brkStart;
        Brk = brk;
        _maps.Clear();
        _maps.AddRange(maps.OrderBy(m => m.Start));
    }
}
