using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// brk, mmap, munmap, mremap, mprotect, madvise — over the program's address space (see <see cref="AddressSpace"/>).
/// In the paged model writable mappings without MAP_NORESERVE (and the heap) are committed against RAM: past it,
/// mmap, mremap and brk fail up front (ENOMEM).
/// Growth is refused (ENOMEM; brk keeps the old break) past RLIMIT_AS, counted as Linux's total_vm: image and heap,
/// mappings, and the stack at its full size.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20,
        MAP_NORESERVE = 0x4000, MAP_FIXED_NOREPLACE = 0x100000;
    private const int PROT_WRITE = 2;
    private const int MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
    private const int MADV_DONTNEED = 4, MADV_REMOVE = 9, MADV_FREE = 8;

    /// <summary>Guest RAM itself: the kernel's own view, below the program's permissions.</summary>
    private Platform.GuestMemory Ram => Mm.Memory;

    private static bool PageAligned(ulong x) => (x & (AddressSpace.PageSize - 1)) == 0;

    private long SysBrk(ulong addr)
    {
        if (addr > Mm.Brk && AddressSpace.PageUp(addr) - AddressSpace.PageUp(Mm.Brk) is var grow
            && (!MayExpand(grow, 0, 0) || !Mm.MayCommit(grow))) return (long)Mm.Brk;
        return (long)Mm.SetBrk(addr);
    }

    /// <summary>
    /// Whether the address space may grow by <paramref name="bytes"/>, less what is already mapped in
    /// [<paramref name="reuseStart"/>, <paramref name="reuseEnd"/>) (a MAP_FIXED mapping replaces it), under RLIMIT_AS.
    /// </summary>
    private bool MayExpand(ulong bytes, ulong reuseStart, ulong reuseEnd)
    {
        ulong limit = Limits.Soft(ResourceLimits.RLIMIT_AS);
        if (limit == ResourceLimits.Infinity || bytes == 0) return true;
        ulong total = AddressSpace.PageUp(Mm.Brk) - Mm.BrkStart + Mm.StackSize; // the image's segments are mappings
        for (int i = 0; i < Mm.Mappings.Count; i++)
        {
            var m = Mm.Mappings[i];
            total += m.End - m.Start;
            if (m.Start < reuseEnd && reuseStart < m.End) bytes -= Math.Min(m.End, reuseEnd) - Math.Max(m.Start, reuseStart);
        }
        return total + bytes <= limit;
    }

    private long SysMmap(ulong addr, ulong length, int prot, int flags, int fd, long offset)
    {
        if (length == 0 || !PageAligned(addr) || (offset & 0xFFF) != 0) return -Errno.EINVAL;
        int type = flags & 3;
        if (type != MAP_SHARED && type != MAP_PRIVATE && type != 3) return -Errno.EINVAL;
        if (length > Mm.Limit) return -Errno.ENOMEM;
        ulong len = AddressSpace.PageUp(length);
        var kind = (type == MAP_SHARED ? MapFlags.Shared : MapFlags.None) | ((flags & MAP_NORESERVE) != 0 ? MapFlags.NoReserve : MapFlags.None)
            | ((flags & MAP_ANONYMOUS) == 0 ? MapFlags.File : MapFlags.None);

        Files.FileDescription? file = null;
        if ((flags & MAP_ANONYMOUS) == 0)
        {
            file = Fds.Get(fd);
            if (file == null) return -Errno.EBADF;
            if (file is Volumes.VolumeFile { IsDirectory: false } vf)
            {
                // A private mapping of a volume file is a copy, as of a read-only file's; a writable shared one would
                // change the file behind the journal's back (docs/storage.md): refused.
                if ((vf.Flags & 3) == 1) return -Errno.EACCES;
                if (type == MAP_SHARED && (prot & PROT_WRITE) != 0) return -Errno.ENODEV;
            }
            else if (file is not Files.HostFile { IsDirectory: false }) return -Errno.ENODEV;
            // Files are read-only: a private mapping is a copy; a shared one may not be writable.
            else if (type == MAP_SHARED && (prot & PROT_WRITE) != 0) return -Errno.EACCES;
        }

        ulong start;
        if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0)
        {
            if (!Mm.MayMapFixed(addr, addr + len)) return (flags & MAP_FIXED_NOREPLACE) != 0 && Mm.IsUserRange(addr, len) ? -Errno.EEXIST : -Errno.ENOMEM;
            if ((flags & MAP_FIXED_NOREPLACE) != 0 && !Mm.IsFree(addr, addr + len)) return -Errno.EEXIST;
            start = addr;
        }
        else if (addr != 0 && Mm.IsFree(addr, addr + len))
        {
            start = addr; // honour a free hint, as Linux does
        }
        else
        {
            start = Mm.FindFree(len);
            if (start == 0) return -Errno.ENOMEM;
        }
        if (!MayExpand(len, start, start + len)) return -Errno.ENOMEM;
        // Committed memory is refused up front when RAM could not back it (Linux's strict overcommit).
        if ((prot & PROT_WRITE) != 0 && (kind & MapFlags.NoReserve) == 0 && !Mm.MayCommit(len, start, start + len)) return -Errno.ENOMEM;
        Mm.Map(start, start + len, prot, kind);
        if (file != null)
        {
            long n = FillFromFile(file, start, len, offset);
            if (n < 0)
            {
                Mm.Unmap(start, start + len);
                return n;
            }
        }
        return (long)start;
    }

    /// <summary>The kernel fills a file mapping whatever its protection (it may be read-only to the program).</summary>
    private long FillFromFile(Files.FileDescription file, ulong start, ulong len, long offset)
    {
        if (!Mm.Paged) return file.PRead(Ram.Physical(start, (int)Math.Min(len, int.MaxValue)), offset);
        byte[] chunk = new byte[Math.Min(len, 1UL << 20)];
        for (ulong done = 0; done < len;)
        {
            int want = (int)Math.Min((ulong)chunk.Length, len - done);
            long n = file.PRead(chunk.AsSpan(0, want), offset + (long)done);
            if (n < 0) return n;
            if (n == 0) break;
            Mm.KernelWrite(start + done, chunk.AsSpan(0, (int)n)); // only what the file holds: the rest stays unbacked zeros
            done += (ulong)n;
        }
        return 0;
    }

    private long SysMunmap(ulong addr, ulong length)
    {
        if (!PageAligned(addr) || length == 0) return -Errno.EINVAL;
        ulong len = AddressSpace.PageUp(length);
        if (!Mm.IsUserRange(addr, len)) return -Errno.EINVAL;
        Mm.Unmap(addr, addr + len);
        return 0;
    }

    private long SysMremap(ulong oldAddr, ulong oldSize, ulong newSize, int flags, ulong newAddr)
    {
        if (!PageAligned(oldAddr) || newSize == 0 || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) != 0) return -Errno.EINVAL;
        if ((flags & MREMAP_FIXED) != 0) return -Errno.EINVAL; // not offered; glibc and musl never need it
        ulong oldLen = AddressSpace.PageUp(oldSize), newLen = AddressSpace.PageUp(newSize);
        if (oldLen == 0 || !Mm.IsMapped(oldAddr, oldAddr + oldLen)) return -Errno.EFAULT;
        var m = Mm.MappingAt(oldAddr)!.Value;
        if (newLen <= oldLen)
        {
            if (newLen < oldLen) Mm.Unmap(oldAddr + newLen, oldAddr + oldLen);
            return (long)oldAddr;
        }
        if (!MayExpand(newLen - oldLen, 0, 0)) return -Errno.ENOMEM;
        bool counted = (m.Prot & PROT_WRITE) != 0 && (m.Flags & MapFlags.NoReserve) == 0;
        if (counted && !Mm.MayCommit(newLen - oldLen)) return -Errno.ENOMEM;
        if (Mm.IsFree(oldAddr + oldLen, oldAddr + newLen))
        {
            Mm.Map(oldAddr + oldLen, oldAddr + newLen, m.Prot, m.Flags);
            return (long)oldAddr;
        }
        if ((flags & MREMAP_MAYMOVE) == 0) return -Errno.ENOMEM;
        ulong to = Mm.FindFree(newLen);
        if (to == 0) return -Errno.ENOMEM;
        Mm.Move(oldAddr, oldLen, to, newLen);
        return (long)to;
    }

    private long SysMprotect(ulong addr, ulong length, int prot)
    {
        if (!PageAligned(addr)) return -Errno.EINVAL;
        ulong len = AddressSpace.PageUp(length);
        if (len == 0) return 0;
        if (!Mm.IsUserRange(addr, len)) return -Errno.ENOMEM;
        // A shared file mapping never becomes writable (files are read-only; a volume's would bypass the journal).
        if ((prot & PROT_WRITE) != 0)
            foreach (var m in Mm.Mappings)
                if ((m.Flags & (MapFlags.Shared | MapFlags.File)) == (MapFlags.Shared | MapFlags.File) && m.Start < addr + len && addr < m.End)
                    return -Errno.EACCES;
        Mm.SetProtection(addr, addr + len, prot);
        return 0;
    }

    private long SysMadvise(ulong addr, ulong length, int advice)
    {
        if (!PageAligned(addr)) return -Errno.EINVAL;
        ulong len = AddressSpace.PageUp(length);
        if (len == 0) return 0;
        if (!Mm.IsUserRange(addr, len)) return -Errno.ENOMEM;
        // Anonymous private memory reads back as zeros after these; MADV_FREE may, so freeing is allowed.
        if (advice is MADV_DONTNEED or MADV_REMOVE or MADV_FREE) Mm.Discard(addr, addr + len);
        return 0;
    }
}
