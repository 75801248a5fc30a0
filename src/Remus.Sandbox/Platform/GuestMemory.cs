using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Remus.Sandbox.Platform;

/// <summary>Raised when the guest hands the kernel an address it may not touch; syscalls turn it into -EFAULT.</summary>
public sealed class GuestFaultException(ulong address) : Exception($"bad guest address 0x{address:x}")
{
    public ulong Address { get; } = address;
}

/// <summary>
/// Guest RAM: one memfd of <see cref="Size"/> bytes, mapped once into this process and once into the vCPU
/// (identity layout: guest virtual = guest physical = offset in the memfd). The first <see cref="UserBase"/> bytes are
/// reserved for the platform (KVM: page tables, GDT/IDT/TSS, stubs) and never visible to the program.
/// Every guest pointer the kernel touches goes through <see cref="Span"/>/<see cref="WritableSpan"/>, which check it.
/// Writes made here (not by the vCPU) are recorded in <see cref="HostDirty"/> so checkpoints can see them.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    public const ulong PageSize = 4096;
    public const ulong UserBase = 2 << 20;

    private byte* _base;
    private readonly ulong[] _hostDirty;
    private readonly ulong[] _hostDirtySummary; // bit w%64 of word w/64: _hostDirty[w] may be non-zero

    public int Fd { get; private set; }
    public ulong Size { get; }

    /// <summary>One bit per page written by the VMM since the last <see cref="TakeHostDirty"/>.</summary>
    public ReadOnlySpan<ulong> HostDirty => _hostDirty;

    public GuestMemory(ulong size)
    {
        if (size % (2 << 20) != 0 || size <= UserBase) throw new ArgumentOutOfRangeException(nameof(size));
        Size = size;
        // Not close-on-exec: the ptrace stub inherits it, maps it and closes its copy.
        Fd = Libc.memfd_create("remus-guest-ram", 0);
        if (Fd < 0) throw new SandboxException($"cannot allocate guest memory: {Libc.ErrnoText(Libc.Errno)}");
        if (Libc.ftruncate(Fd, (long)size) != 0)
        {
            int e = Libc.Errno;
            Libc.close(Fd);
            throw new SandboxException($"cannot allocate {size >> 20} MiB of guest memory: {Libc.ErrnoText(e)}");
        }
        nint p = Libc.mmap(0, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, Fd, 0);
        if (p == -1)
        {
            int e = Libc.Errno;
            Libc.close(Fd);
            throw new SandboxException($"cannot map guest memory: {Libc.ErrnoText(e)}");
        }
        _base = (byte*)p;
        _hostDirty = new ulong[(size / PageSize + 63) / 64];
        _hostDirtySummary = new ulong[(_hostDirty.Length + 63) / 64];
    }

    /// <summary>The host address of guest address 0 (for the KVM memory slot).</summary>
    public nint HostBase => (nint)_base;

    /// <summary>True when [addr, addr+len) lies in user memory.</summary>
    public bool IsUserRange(ulong addr, ulong len) =>
        addr >= UserBase && addr <= Size && len <= Size - addr;

    private void Check(ulong addr, ulong len)
    {
        if (!IsUserRange(addr, len)) throw new GuestFaultException(addr);
    }

    /// <summary>Read-only view of guest user memory.</summary>
    public ReadOnlySpan<byte> Span(ulong addr, int len)
    {
        if (len < 0) throw new GuestFaultException(addr);
        Check(addr, (ulong)len);
        return new ReadOnlySpan<byte>(_base + addr, len);
    }

    /// <summary>Writable view of guest user memory; the pages are marked dirty.</summary>
    public Span<byte> WritableSpan(ulong addr, int len)
    {
        if (len < 0) throw new GuestFaultException(addr);
        Check(addr, (ulong)len);
        MarkDirty(addr, (ulong)len);
        return new Span<byte>(_base + addr, len);
    }

    /// <summary>Any guest-physical range, including the platform's reserved area (loader and platforms only).</summary>
    internal Span<byte> Physical(ulong addr, int len)
    {
        if (len < 0 || addr > Size || (ulong)len > Size - addr) throw new GuestFaultException(addr);
        MarkDirty(addr, (ulong)len);
        return new Span<byte>(_base + addr, len);
    }

    /// <summary>Any guest-physical range, read-only (not marked dirty): the kernel's reads of program memory.</summary>
    internal ReadOnlySpan<byte> PhysicalRead(ulong addr, int len)
    {
        if (len < 0 || addr > Size || (ulong)len > Size - addr) throw new GuestFaultException(addr);
        return new ReadOnlySpan<byte>(_base + addr, len);
    }

    /// <summary>Guest page <paramref name="pfn"/> as it is, for checkpoints (not marked dirty).</summary>
    public Span<byte> Page(ulong pfn)
    {
        if (pfn >= Size / PageSize) throw new GuestFaultException(pfn * PageSize);
        return new Span<byte>(_base + pfn * PageSize, (int)PageSize);
    }

    /// <summary>
    /// Writes whole pages <paramref name="firstPfn"/>.. from <paramref name="pages"/> (a multiple of the page size)
    /// through the memfd, not through this process's mapping, and does not mark them dirty (as <see cref="Page"/>, for
    /// a domain being filled from a checkpoint). The content is the same either way (one page cache), but a write
    /// through the mapping first-touches every page: a fault and a page-table entry each, which on our nested
    /// machines costs more than the copy (a receiver filling fresh memory: about 1.5 GB/s through the mapping, about
    /// 3 GB/s through pwrite, bench/Remus.Bench.Stream). The entries are made later, and only for the pages touched.
    /// </summary>
    public void WritePages(ulong firstPfn, ReadOnlySpan<byte> pages)
    {
        if (pages.Length % (int)PageSize != 0) throw new ArgumentException("not a whole number of pages", nameof(pages));
        ulong offset = firstPfn * PageSize, length = (ulong)pages.Length;
        if (firstPfn >= Size / PageSize || length > Size - offset) throw new GuestFaultException(offset);
        if (Fd < 0) throw new ObjectDisposedException(nameof(GuestMemory));
        fixed (byte* p = pages)
        {
            ulong done = 0;
            while (done < length)
            {
                nint n = Libc.pwrite(Fd, p + done, (nuint)(length - done), (long)(offset + done));
                if (n > 0) { done += (ulong)n; continue; }
                int e = Libc.Errno;
                if (n < 0 && e == 4) continue; // EINTR
                throw new SandboxException($"cannot write {length >> 12} pages at guest page 0x{firstPfn:x} of guest memory: {(n == 0 ? "no progress" : Libc.ErrnoText(e))}");
            }
        }
    }

    /// <summary>
    /// ORs into <paramref name="bitmap"/> every page of [from, Size) that holds data, skipping the memfd's holes
    /// (never-written or released memory, which reads as zeros) without touching them.
    /// </summary>
    public void MarkPopulated(Span<ulong> bitmap, ulong from)
    {
        long at = (long)from;
        while (at < (long)Size)
        {
            long data = Libc.lseek(Fd, at, Libc.SEEK_DATA);
            if (data < 0) break; // ENXIO: no data past here
            long hole = Libc.lseek(Fd, data, Libc.SEEK_HOLE);
            if (hole < 0) hole = (long)Size;
            for (ulong p = (ulong)data / PageSize; p < ((ulong)hole + PageSize - 1) / PageSize && p < Size / PageSize; p++)
                bitmap[(int)(p >> 6)] |= 1UL << (int)(p & 63);
            at = hole;
        }
    }

    public void MarkDirty(ulong addr, ulong len)
    {
        if (len == 0) return;
        ulong first = addr / PageSize, last = (addr + len - 1) / PageSize;
        for (ulong p = first; p <= last; p++)
        {
            ulong bit = 1UL << (int)(p & 63);
            if ((Volatile.Read(ref _hostDirty[p >> 6]) & bit) != 0) continue;
            // The word's bit first, then its summary bit (TakeHostDirty clears them in the other order): a set bit
            // always has its summary bit set, or is being taken.
            Interlocked.Or(ref _hostDirty[p >> 6], bit);
            ulong summaryBit = 1UL << (int)((p >> 6) & 63);
            if ((Volatile.Read(ref _hostDirtySummary[p >> 12]) & summaryBit) == 0) Interlocked.Or(ref _hostDirtySummary[p >> 12], summaryBit);
        }
    }

    /// <summary>ORs the host-dirty bitmap into <paramref name="into"/> and clears it (safe while the vCPU runs).</summary>
    public void TakeHostDirty(Span<ulong> into)
    {
        for (int s = 0; s < _hostDirtySummary.Length; s++)
        {
            if (Volatile.Read(ref _hostDirtySummary[s]) == 0) continue;
            for (ulong sw = Interlocked.Exchange(ref _hostDirtySummary[s], 0); sw != 0; sw &= sw - 1)
            {
                int i = s * 64 + System.Numerics.BitOperations.TrailingZeroCount(sw);
                into[i] |= Interlocked.Exchange(ref _hostDirty[i], 0);
            }
        }
    }

    /// <summary>
    /// Adds the host-dirty pages to <paramref name="into"/> and clears them (safe while the vCPU runs): O(words
    /// written + words / 64), through the summary, not O(guest memory).
    /// </summary>
    public void TakeHostDirty(DirtyPageSet into)
    {
        for (int s = 0; s < _hostDirtySummary.Length; s++)
        {
            if (Volatile.Read(ref _hostDirtySummary[s]) == 0) continue;
            for (ulong sw = Interlocked.Exchange(ref _hostDirtySummary[s], 0); sw != 0; sw &= sw - 1)
            {
                int i = s * 64 + System.Numerics.BitOperations.TrailingZeroCount(sw);
                into.OrWord(i, Interlocked.Exchange(ref _hostDirty[i], 0));
            }
        }
    }

    /// <summary>Number of 64-bit words in a bitmap of all guest pages.</summary>
    public int BitmapWords => _hostDirty.Length;

    public ulong ReadU64(ulong addr) => BinaryPrimitives.ReadUInt64LittleEndian(Span(addr, 8));
    public uint ReadU32(ulong addr) => BinaryPrimitives.ReadUInt32LittleEndian(Span(addr, 4));
    public void WriteU64(ulong addr, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(WritableSpan(addr, 8), value);
    public void WriteU32(ulong addr, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(WritableSpan(addr, 4), value);

    public void Write(ulong addr, ReadOnlySpan<byte> data) => data.CopyTo(WritableSpan(addr, data.Length));

    public T Read<T>(ulong addr) where T : unmanaged
    {
        Check(addr, (ulong)sizeof(T));
        return Unsafe.ReadUnaligned<T>(_base + addr);
    }

    public void WriteStruct<T>(ulong addr, in T value) where T : unmanaged
    {
        Check(addr, (ulong)sizeof(T));
        MarkDirty(addr, (ulong)sizeof(T));
        Unsafe.WriteUnaligned(_base + addr, value);
    }

    /// <summary>Reads a NUL-terminated string of at most <paramref name="max"/> bytes (ENAMETOOLONG past it).</summary>
    public string ReadCString(ulong addr, int max = 4096)
    {
        Check(addr, 1);
        ulong avail = Math.Min((ulong)max, Size - addr);
        var span = new ReadOnlySpan<byte>(_base + addr, (int)avail);
        int n = span.IndexOf((byte)0);
        if (n < 0)
        {
            if (avail < (ulong)max) throw new GuestFaultException(addr + avail);
            throw new NameTooLongException();
        }
        return Encoding.UTF8.GetString(span[..n]);
    }

    /// <summary>
    /// Makes [addr, addr+len) read as zeros, releasing whole pages to the host (anonymous memory semantics for
    /// munmap/MADV_DONTNEED). Partial pages are cleared in place.
    /// </summary>
    public void Zero(ulong addr, ulong len)
    {
        Check(addr, len);
        if (len == 0) return;
        ulong start = (addr + PageSize - 1) & ~(PageSize - 1), end = (addr + len) & ~(PageSize - 1);
        if (end > start + 16 * PageSize &&
            Libc.fallocate(Fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, (long)start, (long)(end - start)) == 0)
        {
            new Span<byte>(_base + addr, (int)(start - addr)).Clear();
            ClearLarge(end, addr + len - end);
        }
        else
        {
            ClearLarge(addr, len);
        }
        MarkDirty(addr, len);
    }

    /// <summary>
    /// Returns whole pages [addr, addr+len) to the host (they read as zeros, cost nothing, and a checkpoint skips them)
    /// and marks them dirty: the frame allocator's free.
    /// </summary>
    internal void Release(ulong addr, ulong len)
    {
        if (len == 0 || addr > Size || len > Size - addr) return;
        if (Libc.fallocate(Fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, (long)addr, (long)len) != 0)
            ClearLarge(addr, len);
        MarkDirty(addr, len);
    }

    private void ClearLarge(ulong addr, ulong len)
    {
        while (len > 0)
        {
            int n = (int)Math.Min(len, 1UL << 30);
            new Span<byte>(_base + addr, n).Clear();
            addr += (ulong)n;
            len -= (ulong)n;
        }
    }

    public void Dispose()
    {
        if (_base != null)
        {
            Libc.munmap((nint)_base, (nuint)Size);
            _base = null;
        }
        CloseFd();
    }

    /// <summary>Closes this process's memfd once every vCPU has its own mapping.</summary>
    internal void CloseFd()
    {
        if (Fd >= 0) { Libc.close(Fd); Fd = -1; }
    }
}

/// <summary>A guest string longer than the kernel accepts (ENAMETOOLONG).</summary>
public sealed class NameTooLongException() : Exception("name too long");
