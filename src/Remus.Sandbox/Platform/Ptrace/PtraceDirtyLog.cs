using System.Numerics;
using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// The dirty log of the ptrace platform, the counterpart of KVM_GET_DIRTY_LOG: a userfaultfd in asynchronous
/// write-protect mode over the stub's guest RAM mapping, read and re-armed atomically by PAGEMAP_SCAN on the stub's
/// /proc/PID/pagemap (Linux 6.7+, the same mechanism CRIU uses for incremental dumps). A write by the guest to a
/// protected page just clears the protection (no fault reaches anyone); the scan reports those pages as written
/// and protects them again. The userfaultfd is created inside the stub (it belongs to the stub's mm) and fetched
/// here with pidfd_getfd.
/// Paged address space: the stub maps guest frames at the program's virtual addresses, one mmap per faulted run;
/// each new mapping is registered (<see cref="Register"/>), and a harvest reports the frames behind the virtual pages
/// written (through the vCPU's record of what it mapped). The untracked-set hint is not taken there.
/// </summary>
internal sealed unsafe class PtraceDirtyLog : IDisposable
{
    private const ulong UFFD_API = 0xAA;
    private const ulong UFFD_FEATURE_WP_UNPOPULATED = 1 << 13, UFFD_FEATURE_WP_ASYNC = 1 << 15;
    private const ulong UFFDIO_API = 0xC018AA3F, UFFDIO_REGISTER = 0xC020AA00, UFFDIO_WRITEPROTECT = 0xC018AA06;
    private const ulong UFFDIO_REGISTER_MODE_WP = 2, UFFDIO_WRITEPROTECT_MODE_WP = 1;
    private const ulong PAGEMAP_SCAN = 0xC0606610;
    private const ulong PM_SCAN_WP_MATCHING = 1, PM_SCAN_CHECK_WPASYNC = 2, PAGE_IS_WRITTEN = 2;
    private const int Regions = 512;

    [StructLayout(LayoutKind.Sequential)]
    private struct PmScanArg
    {
        public ulong Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages, CategoryInverted, CategoryMask,
            CategoryAnyofMask, ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PageRegion
    {
        public ulong Start, End, Categories;
    }

    private readonly int _uffd;
    private readonly int _pagemap;
    private readonly ulong _start, _end;
    private readonly PageRegion[] _regions = new PageRegion[Regions];
    private readonly ulong[] _untracked, _leaving, _added, _removed; // bitmaps over all guest pages
    private readonly Func<ulong, ulong>? _frameOf;
    private bool _anyUntracked; // whether _untracked or _leaving may hold a page (else one scan of the whole range)
    private readonly ColdRegions? _cold;    // paged: the regions left out of the scan (null: every mapping is scanned)
    private readonly DirtyPageSet? _carry;  // paged: frames written in regions just before they were unmapped

    /// <summary>Harvests without a write after which a 2 MiB region leaves the scan (paged; REMUS_PTRACE_COLD_AFTER,
    /// 0: never, every mapping is scanned at every harvest).</summary>
    public static int ColdAfterHarvests =>
        int.TryParse(Environment.GetEnvironmentVariable("REMUS_PTRACE_COLD_AFTER"), out int n) ? Math.Max(0, n) : 32;

    /// <param name="pid">the stub process</param>
    /// <param name="uffdInStub">the userfaultfd the stub created</param>
    public PtraceDirtyLog(int pid, int uffdInStub, ulong start, ulong end) : this(pid, uffdInStub, start, end, null, end, true) { }

    /// <param name="frameOf">paged: the guest frame behind a virtual page of the stub (ulong.MaxValue: none)</param>
    /// <param name="ramSize">bytes of guest RAM (the bitmaps' reach)</param>
    /// <param name="anyMapped">whether the stub maps anything in [start, end) yet (registering nothing fails)</param>
    public PtraceDirtyLog(int pid, int uffdInStub, ulong start, ulong end, Func<ulong, ulong>? frameOf, ulong ramSize, bool anyMapped)
    {
        _start = start;
        if (frameOf != null && ColdAfterHarvests > 0)
        {
            _cold = new ColdRegions(ColdAfterHarvests);
            _carry = new DirtyPageSet((int)((ramSize / GuestMemory.PageSize + 63) / 64));
        }
        _end = end;
        _frameOf = frameOf;
        int words = (int)((ramSize / GuestMemory.PageSize + 63) / 64);
        _untracked = new ulong[words];
        _leaving = new ulong[words];
        _added = new ulong[words];
        _removed = new ulong[words];
        int pidfd = (int)Libc.syscall(Libc.SYS_pidfd_open, pid, 0, 0);
        if (pidfd < 0) throw Fail("pidfd_open");
        try
        {
            _uffd = (int)Libc.syscall(Libc.SYS_pidfd_getfd, pidfd, uffdInStub, 0);
            if (_uffd < 0) throw Fail("pidfd_getfd");
        }
        finally
        {
            Libc.close(pidfd);
        }
        try
        {
            var api = stackalloc ulong[3] { UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0 };
            if (Libc.ioctl(_uffd, UFFDIO_API, api) != 0) throw Fail("UFFDIO_API (asynchronous write-protect)");
            _pagemap = Libc.open($"/proc/{pid}/pagemap", 0x80000 /* O_RDONLY|O_CLOEXEC */);
            if (_pagemap < 0) throw Fail("open pagemap");
            if (anyMapped) Register(start, end - start, seed: false); // paged: the vCPU seeds the regions (SeedRegion)
        }
        catch
        {
            Libc.close(_uffd);
            if (_pagemap > 0) Libc.close(_pagemap);
            throw;
        }
    }

    private static SandboxException Fail(string what) =>
        new($"dirty-page tracking is not available on this host ({what}: {Libc.ErrnoText(Libc.Errno)})");

    /// <summary>Tracks writes to the stub's mappings in [start, start+length) (a new mapping is not tracked until then).</summary>
    public void Register(ulong start, ulong length) => Register(start, length, seed: true);

    private void Register(ulong start, ulong length, bool seed)
    {
        var reg = stackalloc ulong[4] { start, length, UFFDIO_REGISTER_MODE_WP, 0 };
        if (Libc.ioctl(_uffd, UFFDIO_REGISTER, reg) != 0) throw Fail("UFFDIO_REGISTER");
        var wp = stackalloc ulong[3] { start, length, UFFDIO_WRITEPROTECT_MODE_WP };
        if (Libc.ioctl(_uffd, UFFDIO_WRITEPROTECT, wp) != 0) throw Fail("UFFDIO_WRITEPROTECT");
        if (seed) _cold?.Mapped(start, length);
    }

    /// <summary>Paged: the stub maps program page <paramref name="vpn"/> since before the log started (its region is scanned).</summary>
    public void SeedRegion(ulong vpn) => _cold?.Mapped(vpn * GuestMemory.PageSize, GuestMemory.PageSize);

    /// <summary>Whether regions wait for the vCPU thread to unmap them (<see cref="TakeColdRegions"/>).</summary>
    public bool ColdPending => _cold is { AnyQueued: true };

    /// <summary>Regions (of 2^<see cref="ColdRegions.Shift"/> bytes) scanned at each harvest now (paged).</summary>
    public int WarmRegions => _cold?.Warm ?? 0;

    /// <summary>The regions to unmap now (the vCPU thread, under MapLock, with its stub thread stopped).</summary>
    public int TakeColdRegions(Span<ulong> into) => _cold?.TakeQueued(into) ?? 0;

    /// <summary>
    /// The last scan of a region about to be unmapped (nothing of the program runs until the unmap): what was written
    /// there since the last harvest is reported by the next.
    /// </summary>
    public void ScanRetiring(ulong start, ulong end) => Scan(Math.Max(start, _start), Math.Min(end, _end), default, _carry);

    /// <summary>A queued region stays mapped after all: it is scanned again and goes cold later (twice as late).</summary>
    public void RegionKept(ulong region) => _cold?.Kept(region);

    /// <summary>The region was unmapped in the stub: it is scanned again once something maps it (<see cref="Register"/>).</summary>
    public void RegionUnmapped(ulong region) => _cold?.Unmapped(region);

    /// <summary>
    /// ORs into <paramref name="bitmap"/> (one bit per guest page) the pages written since the last call, plus every
    /// untracked page and every page that left the untracked set since (see <see cref="SetUntracked"/>). Only the
    /// tracked ranges are scanned and protected again: untracked pages keep their page-table entries untouched.
    /// </summary>
    public void Harvest(Span<ulong> bitmap) => Harvest(bitmap, null);

    /// <summary>The same into a <see cref="DirtyPageSet"/>: each page the scan reports is added as it comes, with no
    /// walk of the whole bitmap (the kernel's scan still walks every page-table entry of the scanned ranges).</summary>
    public void Harvest(DirtyPageSet set) => Harvest(default, set);

    private void Harvest(Span<ulong> bitmap, DirtyPageSet? set)
    {
        if (_frameOf != null)
        {
            Scan(_start, _end, bitmap, set);
            if (_carry != null)
            {
                if (set != null) _carry.MoveTo(set);
                else _carry.MoveTo(bitmap);
            }
            _cold?.EndHarvest();
            return;
        }
        ulong first = _start / GuestMemory.PageSize, limit = _end / GuestMemory.PageSize;
        if (!_anyUntracked)
        {
            Scan(_start, _end, bitmap, set);
            return;
        }
        ulong pfn = first;
        while (pfn < limit)
        {
            ulong runStart = pfn;
            pfn = RunEnd(_untracked, pfn, limit, set: false);
            if (pfn > runStart) Scan(runStart * GuestMemory.PageSize, pfn * GuestMemory.PageSize, bitmap, set);
            pfn = RunEnd(_untracked, pfn, limit, set: true);
        }
        for (int i = 0; i < _untracked.Length; i++)
        {
            if (set != null) set.OrWord(i, _untracked[i] | _leaving[i]);
            else bitmap[i] |= _untracked[i] | _leaving[i];
            _leaving[i] = 0;
        }
        _anyUntracked = _untracked.AsSpan().IndexOfAnyExcept(0UL) >= 0;
    }

    private void Scan(ulong start, ulong end, Span<ulong> bitmap, DirtyPageSet? set)
    {
        fixed (PageRegion* vec = _regions)
        {
            var arg = new PmScanArg
            {
                Size = (ulong)sizeof(PmScanArg), Flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                Start = start, End = end, Vec = (ulong)vec, VecLen = Regions,
                CategoryMask = PAGE_IS_WRITTEN, ReturnMask = PAGE_IS_WRITTEN,
            };
            ulong limit = set?.Capacity ?? (ulong)bitmap.Length * 64;
            while (true)
            {
                int n = Libc.ioctl(_pagemap, PAGEMAP_SCAN, &arg);
                if (n < 0) throw Fail($"PAGEMAP_SCAN of [0x{arg.Start:x}, 0x{end:x})");
                for (int i = 0; i < n; i++)
                    for (ulong a = vec[i].Start; a < vec[i].End; a += GuestMemory.PageSize)
                    {
                        ulong pfn = _frameOf == null ? a / GuestMemory.PageSize : _frameOf(a / GuestMemory.PageSize);
                        _cold?.Written(a);
                        if (pfn >= limit) continue; // paged: nothing of guest RAM there
                        if (set != null) set.Add(pfn);
                        else bitmap[(int)(pfn >> 6)] |= 1UL << (int)(pfn & 63);
                    }
                if (arg.WalkEnd >= end || n < Regions) break;
                arg.Start = arg.WalkEnd;
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="bitmap"/> the set of untracked pages: their write protection is lifted, so the guest
    /// writes them without a fault, and every harvest reports them. On these nested machines it is the change of a
    /// page-table entry that costs (~14 µs at the guest's next write to the page, whether it faults or not), so an
    /// untracked page is left alone by the harvests; pages that leave the set are protected again now, and since a
    /// write just before that went unseen, the next harvest reports them once more.
    /// </summary>
    public void SetUntracked(ReadOnlySpan<ulong> bitmap)
    {
        if (_frameOf != null) return; // paged: the set is of frames, the stub's entries are virtual; every write is tracked
        for (int i = 0; i < _untracked.Length; i++)
        {
            ulong now = i < bitmap.Length ? bitmap[i] : 0;
            _added[i] = now & ~_untracked[i];
            _removed[i] = _untracked[i] & ~now;
            _leaving[i] |= _removed[i];
            _untracked[i] = now;
        }
        _anyUntracked = true; // the next harvest reports the leaving pages, then finds out whether any stay
        WriteProtectRuns(_added, protect: false);
        WriteProtectRuns(_removed, protect: true);
    }

    private void WriteProtectRuns(ulong[] bits, bool protect)
    {
        ulong first = _start / GuestMemory.PageSize, limit = _end / GuestMemory.PageSize;
        var wp = stackalloc ulong[3];
        ulong pfn = RunEnd(bits, first, limit, set: false);
        while (pfn < limit)
        {
            ulong runStart = pfn;
            pfn = RunEnd(bits, pfn, limit, set: true);
            wp[0] = runStart * GuestMemory.PageSize;
            wp[1] = (pfn - runStart) * GuestMemory.PageSize;
            wp[2] = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
            if (Libc.ioctl(_uffd, UFFDIO_WRITEPROTECT, wp) != 0) throw Fail("UFFDIO_WRITEPROTECT");
            pfn = RunEnd(bits, pfn, limit, set: false);
        }
    }

    /// <summary>The first page at or after <paramref name="pfn"/> (below <paramref name="limit"/>) whose bit is not <paramref name="set"/>.</summary>
    private static ulong RunEnd(ReadOnlySpan<ulong> bits, ulong pfn, ulong limit, bool set)
    {
        while (pfn < limit)
        {
            ulong word = bits[(int)(pfn >> 6)];
            if (set) word = ~word;
            word >>= (int)(pfn & 63); // the bits from pfn on, "run continues" as 0
            if (word != 0) return Math.Min(limit, pfn + (ulong)BitOperations.TrailingZeroCount(word));
            pfn = (pfn | 63) + 1;
        }
        return limit;
    }

    public void Dispose()
    {
        Libc.close(_pagemap);
        Libc.close(_uffd);
    }
}
