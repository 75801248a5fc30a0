using System.Numerics;
using System.Runtime.CompilerServices;
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

    /// <summary>Forgets every frame (restore, before the tables are walked). O(RAM / 64): word by word.</summary>
    public void Reset()
    {
        Array.Clear(_used);
        KeepPlatformFrames();
        Used = 0;
        _hint = _first;
    }

    /// <summary>The in-use bitmap, one bit per frame of RAM (the platform's frames, below the program's, always set).</summary>
    public ReadOnlySpan<ulong> UsedBits => _used;

    /// <summary>
    /// Replaces the frames in use with those set in <paramref name="used"/> (restore: what the page tables hold),
    /// the platform's frames set whatever it says and bits past RAM ignored. O(RAM / 64): word by word.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per restore, over a bitmap of all RAM: optimized from the first call
    public void Load(ReadOnlySpan<ulong> used)
    {
        if (used.Length != _used.Length) throw new ArgumentException($"a bitmap of {_used.Length} words is needed", nameof(used));
        used.CopyTo(_used);
        KeepPlatformFrames();
        if (_limit % 64 != 0) _used[^1] &= (1UL << (int)(_limit % 64)) - 1;
        ulong n = 0;
        foreach (ulong w in _used) n += (ulong)BitOperations.PopCount(w);
        Used = n - _first;
        _hint = _first;
    }

    /// <summary>
    /// Releases every frame of the program's that <paramref name="candidates"/> names and that is not in use (restore:
    /// a frame no table holds must read as zeros when handed out), one punch per run of them. O(RAM / 64 + runs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per restore, over a bitmap of all RAM: optimized from the first call
    public void ReleaseUnused(ReadOnlySpan<ulong> candidates)
    {
        ulong runStart = 0, runLength = 0;
        int words = Math.Min(candidates.Length, _used.Length);
        for (int w = (int)(_first >> 6); w < words; w++)
        {
            ulong free = candidates[w] & ~_used[w];
            while (free != 0)
            {
                ulong pfn = (ulong)w * 64 + (ulong)BitOperations.TrailingZeroCount(free);
                free &= free - 1;
                if (pfn < _first || pfn >= _limit) continue;
                if (runLength > 0 && pfn == runStart + runLength) { runLength++; continue; }
                if (runLength > 0) ReleaseRun(runStart, runLength);
                runStart = pfn;
                runLength = 1;
            }
        }
        if (runLength > 0) ReleaseRun(runStart, runLength);
    }

    private void KeepPlatformFrames()
    {
        for (ulong p = 0; p < _first; p += 64)
            _used[p >> 6] |= _first - p >= 64 ? ulong.MaxValue : (1UL << (int)(_first - p)) - 1;
    }
}
