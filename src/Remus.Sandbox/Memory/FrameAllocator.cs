using System.Numerics;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>
/// Guest RAM as physical frames for the program's pages and the page tables: one bit per 4 KiB frame of
/// [<see cref="GuestMemory.UserBase"/>, RAM size) (below it is the platform's). A free frame is a hole in the memfd
/// (punched when freed), so it reads as zeros, costs no host memory and a checkpoint skips it; a frame handed out is
/// therefore already zeroed. Restore rebuilds the bitmap from the page tables (<see cref="MarkUsed"/>).
/// </summary>
public sealed class FrameAllocator
{
    private readonly GuestMemory _ram;
    private readonly ulong[] _used;
    private readonly ulong _first, _limit;
    private ulong _hint;

    public FrameAllocator(GuestMemory ram)
    {
        _ram = ram;
        _first = GuestMemory.UserBase / GuestMemory.PageSize;
        _limit = ram.Size / GuestMemory.PageSize;
        _used = new ulong[(_limit + 63) / 64];
        for (ulong p = 0; p < _first; p++) _used[p >> 6] |= 1UL << (int)(p & 63);
        _hint = _first;
    }

    /// <summary>Frames the program may ever use (RAM above the platform area).</summary>
    public ulong Total => _limit - _first;

    /// <summary>Frames in use (program pages and page tables).</summary>
    public ulong Used { get; private set; }

    public ulong Free => Total - Used;

    public bool IsUsed(ulong pfn) => pfn < _limit && (_used[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0;

    /// <summary>One zeroed frame, or 0 when RAM is full.</summary>
    public ulong Allocate() => AllocateRun(1);

    /// <summary>
    /// <paramref name="count"/> physically contiguous zeroed frames (the first is returned), or 0 when there is no
    /// such run (the caller then takes them one by one).
    /// </summary>
    public ulong AllocateRun(ulong count)
    {
        if (count == 0 || count > Free) return 0;
        ulong found = Find(_hint, _limit, count);
        if (found == 0) found = Find(_first, Math.Min(_limit, _hint + count), count);
        if (found == 0) return 0;
        for (ulong p = found; p < found + count; p++) _used[p >> 6] |= 1UL << (int)(p & 63);
        Used += count;
        _hint = found + count;
        return found;
    }

    private ulong Find(ulong from, ulong to, ulong count)
    {
        ulong p = from;
        while (p + count <= to)
        {
            ulong word = _used[p >> 6] >> (int)(p & 63);
            if (word == ulong.MaxValue >> (int)(p & 63)) { p = (p | 63) + 1; continue; } // rest of the word used
            if ((word & 1) != 0) { p += (ulong)BitOperations.TrailingZeroCount(~word); continue; }
            ulong run = p;
            while (run < p + count && !IsUsed(run)) run++;
            if (run == p + count) return p;
            p = run + 1;
        }
        return 0;
    }

    /// <summary>Returns a frame: punched out of the memfd (it reads as zeros again) and marked dirty.</summary>
    public void Release(ulong pfn) => ReleaseRun(pfn, 1);

    /// <summary>Returns <paramref name="count"/> contiguous frames from <paramref name="pfn"/> on, with one punch.</summary>
    public void ReleaseRun(ulong pfn, ulong count)
    {
        if (pfn < _first || pfn + count > _limit) return;
        for (ulong p = pfn; p < pfn + count; p++)
        {
            if (!IsUsed(p)) continue;
            _used[p >> 6] &= ~(1UL << (int)(p & 63));
            Used--;
        }
        _ram.Release(pfn * GuestMemory.PageSize, count * GuestMemory.PageSize);
        if (pfn < _hint) _hint = pfn;
    }

    /// <summary>Marks a frame in use (restore: every frame the page tables reference).</summary>
    public void MarkUsed(ulong pfn)
    {
        if (pfn < _first || pfn >= _limit || IsUsed(pfn)) return;
        _used[pfn >> 6] |= 1UL << (int)(pfn & 63);
        Used++;
    }

    /// <summary>Forgets every frame (restore, before the tables are walked).</summary>
    public void Reset()
    {
        for (ulong p = _first; p < _limit; p++) _used[p >> 6] &= ~(1UL << (int)(p & 63));
        Used = 0;
        _hint = _first;
    }
}
