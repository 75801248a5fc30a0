using Remus.Sandbox.Platform;
using static Remus.Sandbox.Platform.HostDirectories;

namespace Remus.Sandbox.Kernel.Volumes;

/// <summary>
/// The calls that change a volume's names and attributes, each done on the host and then journaled with canonical
/// paths; results are 0 or a negated errno (Linux's). An open file the program unlinks or renames another file over
/// is moved to .remus-orphans/&lt;n&gt; instead, so that its description keeps a path (kernel state and journal entries
/// are paths, never inodes); it is removed when its last description closes.
/// </summary>
internal sealed partial class VolumeTable
{
    /// <summary>The program's umask (kernel state; umask(2)).</summary>
    public int Umask { get; set; } = 0x12; // 022

    private const int S_IFMT = 0xF000, S_IFLNK = 0xA000, S_IFREG = 0x8000;

    /// <summary>
    /// open/openat/creat inside a volume: a new <see cref="VolumeFile"/>, or a negated errno. O_CREAT that made the file
    /// journals Created (umask applied), O_TRUNC of an existing regular file journals Truncated.
    /// </summary>
    public long Open(int volume, string relative, int flags, int mode, out VolumeFile? file)
    {
        file = null;
        const int O_TMPFILE = 0x410000;
        if ((flags & O_TMPFILE) == O_TMPFILE) return -Errno.EOPNOTSUPP;
        int host = flags & (3 | O_CREAT | O_EXCL | O_TRUNC | O_DIRECTORY | O_NOFOLLOW | O_PATH | 0x800 /* O_NONBLOCK */);
        bool create = (flags & O_CREAT) != 0 && (flags & O_PATH) == 0;
        if (!create) host &= ~(O_CREAT | O_EXCL);
        bool created = false;
        int fd;
        string canonical = "";
        if (create)
        {
            long pr = OpenParent(volume, relative, out var p);
            if (pr < 0) return pr;
            using (p)
            {
                if (p.Hidden) return -Errno.EPERM;
            }
            fd = (flags & O_EXCL) != 0 ? -(int)Errno.ENOENT : OpenPath(volume, relative, host & ~(O_CREAT | O_EXCL), 0, out canonical);
            if (fd == -Errno.ENOENT)
            {
                fd = OpenPath(volume, relative, host | O_EXCL, 0x180, out canonical);
                // O_CREAT without O_EXCL through a dangling symlink: O_EXCL refuses the link, the plain open makes its target.
                if (fd == -Errno.EEXIST && (flags & O_EXCL) == 0) fd = OpenPath(volume, relative, host & ~O_EXCL, 0x180, out canonical);
                created = fd >= 0;
            }
        }
        else fd = OpenPath(volume, relative, host, 0, out canonical);
        if (fd < 0) return fd;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        HostDirectories.StatAt(fd, "", AtEmptyPath, st);
        uint type = StatMode(st) & S_IFMT;
        if (create && type == 0x4000)
        {
            HostFiles.Close(fd);
            return -Errno.EISDIR;
        }
        if (created)
        {
            int m = mode & 0xFFF & ~Umask;
            HostDirectories.Fchmod(fd, m);
            Journal?.Created(volume, canonical, (uint)m);
        }
        else if ((flags & O_TRUNC) != 0 && (flags & O_PATH) == 0 && type == S_IFREG) Journal?.Truncated(volume, canonical, 0);
        file = new VolumeFile(this, volume, fd, canonical, type == 0x4000)
        {
            Flags = flags & ~(O_CREAT | O_EXCL | O_TRUNC | 0x100 /* O_NOCTTY */ | O_CLOEXEC),
        };
        return 0;
    }

    /// <summary>Reopens a file of a checkpoint by its canonical path (no symlink followed, nothing created).</summary>
    public VolumeFile Reopen(int volume, string path, bool isDirectory, int flags, long position)
    {
        if (volume < 0 || volume >= _volumes.Length) throw new SandboxException("corrupt kernel state in the checkpoint (volume index)");
        int host = flags & (3 | O_DIRECTORY | O_PATH | 0x800);
        int fd = HostDirectories.OpenAt2(_volumes[volume].RootFd, path.Length == 0 ? "." : path, host | O_NOFOLLOW, 0, Resolve);
        if (fd < 0 && (host & O_PATH) == 0 && path.Length > 0) fd = HostDirectories.OpenAt2(_volumes[volume].RootFd, path, host, 0, Resolve);
        if (fd < 0)
            throw new SandboxException($"cannot reopen {GuestPathOf(volume, path)} (volume {HostDir(volume)}), open in the checkpoint: {Libc.ErrnoText(-fd)}");
        var f = new VolumeFile(this, volume, fd, path, isDirectory) { Flags = flags };
        if ((host & O_PATH) == 0 && f.Seek(position, 0) < 0 && position != 0)
        {
            f.Release();
            throw new SandboxException($"cannot restore the offset of {GuestPathOf(volume, path)}");
        }
        return f;
    }

    public long MakeDirectory(int volume, string relative, int mode)
    {
        long r = OpenParent(volume, relative, out var p);
        if (r < 0) return r;
        using (p)
        {
            if (p.Special) return -Errno.EEXIST;
            if (p.Hidden) return -Errno.EPERM;
            r = MkdirAt(p.Fd, p.Name, 0x1C0);
            if (r < 0) return r;
            int m = mode & 0x3FF & ~Umask; // rwx for all and the sticky bit
            ChmodAt(p.Fd, p.Name, m, 0);
            Journal?.MadeDirectory(volume, p.Canonical, (uint)m);
            return 0;
        }
    }

    public long RemoveDirectory(int volume, string relative)
    {
        long r = OpenParent(volume, relative, out var p);
        if (r < 0) return r;
        using (p)
        {
            if (p.Name.Length == 0) return -Errno.EBUSY;
            if (p.Name == ".") return -Errno.EINVAL;
            if (p.Name == "..") return -ENOTEMPTY;
            if (p.Hidden) return -Errno.ENOENT;
            Span<byte> st = stackalloc byte[HostFiles.StatSize];
            r = StatName(p, st);
            if (r < 0) return r;
            if (!StatIsDir(st)) return -Errno.ENOTDIR;
            string canonical = p.Canonical;
            if (IsOpen(volume, canonical))
            {
                if (!EmptyDirectory(p)) return -ENOTEMPTY;
                return MoveToOrphans(volume, p, canonical);
            }
            r = UnlinkAt(p.Fd, p.Name, AtRemoveDir);
            if (r == 0) Journal?.RemovedDirectory(volume, canonical);
            return r;
        }
    }

    private static bool EmptyDirectory(in Parent p)
    {
        int fd = HostDirectories.OpenAt(p.Fd, p.Name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd < 0) return false;
        try
        {
            Span<byte> buf = stackalloc byte[4096];
            long n;
            while ((n = HostFiles.GetDents64(fd, buf)) > 0)
            {
                int at = 0;
                while (at + 19 <= n)
                {
                    int len = buf[at + 16] | buf[at + 17] << 8;
                    var name = buf.Slice(at + 19, len - 19);
                    int z = name.IndexOf((byte)0);
                    if (z >= 0) name = name[..z];
                    if (!name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8)) return false;
                    at += len;
                }
            }
            return true;
        }
        finally
        {
            HostFiles.Close(fd);
        }
    }

    public long Unlink(int volume, string relative)
    {
        long r = OpenParent(volume, relative, out var p);
        if (r < 0) return r;
        using (p)
        {
            if (p.Special) return -Errno.EISDIR;
            if (p.Hidden) return -Errno.ENOENT;
            Span<byte> st = stackalloc byte[HostFiles.StatSize];
            r = StatName(p, st);
            if (r < 0) return r;
            if (StatIsDir(st)) return -Errno.EISDIR;
            if (p.TrailingSlash) return -Errno.ENOTDIR;
            string canonical = p.Canonical;
            if (IsOpen(volume, canonical)) return MoveToOrphans(volume, p, canonical);
            r = UnlinkAt(p.Fd, p.Name, 0);
            if (r == 0) Journal?.Unlinked(volume, canonical);
            return r;
        }
    }

    /// <summary>rename/renameat/renameat2 (flags 0, RENAME_NOREPLACE, RENAME_EXCHANGE) within one volume.</summary>
    public long Rename(int volume, string from, int toVolume, string to, uint flags)
    {
        if ((flags & ~(RenameNoReplace | RenameExchange)) != 0 || flags == (RenameNoReplace | RenameExchange)) return -Errno.EINVAL;
        long r = OpenParent(volume, from, out var a);
        if (r < 0) return r;
        using (a)
        {
            r = OpenParent(toVolume, to, out var b);
            if (r < 0) return r;
            using (b)
            {
                if (volume != toVolume) return -EXDEV;
                if (a.Special || b.Special) return -Errno.EBUSY;
                if (a.Hidden) return -Errno.ENOENT;
                if (b.Hidden) return -Errno.EPERM;
                Span<byte> sa = stackalloc byte[HostFiles.StatSize], sb = stackalloc byte[HostFiles.StatSize];
                r = StatName(a, sa);
                if (r < 0) return r;
                bool targetExists = StatName(b, sb) == 0;
                if ((a.TrailingSlash || b.TrailingSlash) && !StatIsDir(sa)) return -Errno.ENOTDIR;
                string oldPath = a.Canonical, newPath = b.Canonical;
                if (flags == RenameExchange)
                {
                    var left = OpenAtOrBelow(volume, oldPath);
                    var right = OpenAtOrBelow(volume, newPath);
                    r = RenameAt2(a.Fd, a.Name, b.Fd, b.Name, flags);
                    if (r < 0) return r;
                    Journal?.Renamed(volume, oldPath, newPath, flags);
                    Retarget(volume, oldPath, newPath, left);
                    Retarget(volume, newPath, oldPath, right);
                    return 0;
                }
                // Renaming over an open file: it keeps a name in .remus-orphans (linked there first, so a failed
                // rename leaves everything as it was).
                string? orphan = null;
                bool orphanIsDir = false;
                if (targetExists && flags == 0 && IsOpen(volume, newPath) && StatInode(sa) != StatInode(sb))
                {
                    orphan = NextOrphanPath(volume);
                    orphanIsDir = StatIsDir(sb);
                    r = orphanIsDir ? RenameAt2(b.Fd, b.Name, _volumes[volume].RootFd, orphan, RenameNoReplace)
                        : LinkAt(b.Fd, b.Name, _volumes[volume].RootFd, orphan, 0);
                    if (r < 0) return r;
                }
                r = RenameAt2(a.Fd, a.Name, b.Fd, b.Name, flags);
                if (r < 0)
                {
                    if (orphan != null)
                    {
                        if (orphanIsDir) RenameAt2(_volumes[volume].RootFd, orphan, b.Fd, b.Name, RenameNoReplace);
                        else UnlinkAt(_volumes[volume].RootFd, orphan, 0);
                    }
                    return r;
                }
                if (orphan != null)
                {
                    if (orphanIsDir) Journal?.Renamed(volume, newPath, orphan, 0);
                    else Journal?.Linked(volume, newPath, orphan);
                    Retarget(volume, newPath, orphan);
                }
                Journal?.Renamed(volume, oldPath, newPath, flags);
                if (oldPath != newPath) Retarget(volume, oldPath, newPath);
                return 0;
            }
        }
    }

    /// <summary>link/linkat (<paramref name="follow"/>: AT_SYMLINK_FOLLOW).</summary>
    public long Link(int volume, string existing, int toVolume, string newPath, bool follow)
    {
        long r = OpenParent(volume, existing, out var a);
        if (r < 0) return r;
        using (a)
        {
            r = OpenParent(toVolume, newPath, out var b);
            if (r < 0) return r;
            using (b)
            {
                if (volume != toVolume) return -EXDEV;
                if (a.Hidden) return -Errno.ENOENT;
                if (b.Special) return -Errno.EEXIST;
                if (b.Hidden) return -Errno.EPERM;
                string from;
                if (follow || a.Special)
                {
                    int fd = OpenPath(volume, existing, O_PATH, 0, out from);
                    if (fd < 0) return fd;
                    // Through /proc/self/fd (AT_SYMLINK_FOLLOW), which needs no privilege, unlike AT_EMPTY_PATH.
                    try { r = LinkAt(AtFdCwd, $"/proc/self/fd/{fd}", b.Fd, b.Name, 0x400); }
                    finally { HostFiles.Close(fd); }
                }
                else
                {
                    from = a.Canonical;
                    if (a.TrailingSlash) return -Errno.ENOTDIR;
                    r = LinkAt(a.Fd, a.Name, b.Fd, b.Name, 0);
                }
                if (r == 0) Journal?.Linked(volume, from, b.Canonical);
                return r;
            }
        }
    }

    public long Symlink(string target, int volume, string relative)
    {
        long r = OpenParent(volume, relative, out var p);
        if (r < 0) return r;
        using (p)
        {
            if (target.Length == 0) return -Errno.ENOENT;
            if (p.Special) return -Errno.EEXIST;
            if (p.Hidden) return -Errno.EPERM;
            r = SymlinkAt(target, p.Fd, p.Name);
            if (r == 0) Journal?.Symlinked(volume, target, p.Canonical);
            return r;
        }
    }

    /// <summary>stat (<paramref name="follow"/>) or lstat inside a volume.</summary>
    public long Stat(int volume, string relative, bool follow, Span<byte> st)
    {
        int fd = OpenPath(volume, relative, O_PATH | (follow ? 0 : O_NOFOLLOW), 0, out _);
        if (fd < 0) return fd;
        try
        {
            long r = HostDirectories.StatAt(fd, "", AtEmptyPath | AtSymlinkNoFollow, st);
            if (r == 0) Virtualize(volume, st);
            return r;
        }
        finally { HostFiles.Close(fd); }
    }

    public long ReadLink(int volume, string relative, Span<byte> buf)
    {
        int fd = OpenPath(volume, relative, O_PATH | O_NOFOLLOW, 0, out _);
        if (fd < 0) return fd;
        try
        {
            Span<byte> st = stackalloc byte[HostFiles.StatSize];
            long r = HostDirectories.StatAt(fd, "", AtEmptyPath | AtSymlinkNoFollow, st);
            if (r < 0) return r;
            if ((StatMode(st) & S_IFMT) != S_IFLNK) return -Errno.EINVAL;
            return ReadLinkAt(fd, "", buf);
        }
        finally { HostFiles.Close(fd); }
    }

    /// <summary>faccessat: F_OK/R_OK/W_OK/X_OK as root sees them (X_OK needs an x bit on anything but a directory).</summary>
    public long Access(int volume, string relative, int mode, bool follow)
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = Stat(volume, relative, follow, st);
        if (r < 0) return r;
        if ((mode & 1) != 0 && !StatIsDir(st) && (StatMode(st) & 0x49) == 0) return -Errno.EACCES;
        return 0;
    }

    public long ChangeMode(int volume, string relative, int mode)
    {
        int fd = OpenPath(volume, relative, O_PATH, 0, out string canonical);
        if (fd < 0) return fd;
        try
        {
            long r = ChmodAt(AtFdCwd, $"/proc/self/fd/{fd}", mode & 0xFFF, 0);
            if (r == 0) Journal?.ChangedMode(volume, canonical, (uint)(mode & 0xFFF));
            return r;
        }
        finally { HostFiles.Close(fd); }
    }

    /// <summary>utimensat on a path (<paramref name="times"/> as utimensat takes them); the resulting times are journaled.</summary>
    public long ChangeTimes(int volume, string relative, ReadOnlySpan<long> times, bool follow)
    {
        long r;
        string canonical;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        if (follow)
        {
            int fd = OpenPath(volume, relative, O_PATH, 0, out canonical);
            if (fd < 0) return fd;
            try
            {
                r = UtimensAt(AtFdCwd, $"/proc/self/fd/{fd}", times, 0);
                if (r == 0) r = HostDirectories.StatAt(fd, "", AtEmptyPath, st);
            }
            finally { HostFiles.Close(fd); }
        }
        else
        {
            r = OpenParent(volume, relative, out var p);
            if (r < 0) return r;
            using (p)
            {
                if (p.Hidden) return -Errno.ENOENT;
                string name = p.Name.Length == 0 ? "." : p.Name;
                canonical = p.Special ? Canonical(volume, p.Fd) : p.Canonical;
                r = UtimensAt(p.Fd, name, times, AtSymlinkNoFollow);
                if (r == 0) r = HostDirectories.StatAt(p.Fd, name, AtSymlinkNoFollow, st);
            }
        }
        if (r == 0) Journal?.ChangedTimes(volume, canonical, StatTimeNs(st, 72), StatTimeNs(st, 88));
        return r;
    }

    public long Truncate(int volume, string relative, long length)
    {
        if (length < 0) return -Errno.EINVAL;
        int fd = OpenPath(volume, relative, O_WRONLY, 0, out string canonical);
        if (fd < 0) return fd;
        try
        {
            long r = HostDirectories.Truncate(fd, length);
            if (r == 0) Journal?.Truncated(volume, canonical, length);
            return r;
        }
        finally { HostFiles.Close(fd); }
    }

    public long StatFs(int volume, string relative, Span<byte> buf)
    {
        int fd = OpenPath(volume, relative, O_PATH, 0, out _);
        if (fd < 0) return fd;
        try { return Fstatfs(fd, buf); }
        finally { HostFiles.Close(fd); }
    }

    /// <summary>sync(2): every volume's file system.</summary>
    public void SyncAll()
    {
        foreach (var v in _volumes) Syncfs(v.RootFd);
    }

    // ---- .remus-orphans ----

    private string NextOrphanPath(int volume)
    {
        var v = _volumes[volume];
        long r = MkdirAt(v.RootFd, OrphansName, 0x1C0);
        if (r == 0) Journal?.MadeDirectory(volume, OrphansName, 0x1C0);
        return $"{OrphansName}/{v.NextOrphan++}";
    }

    /// <summary>Unlink or rmdir of a name still open: renamed into .remus-orphans (journaled as that rename).</summary>
    private long MoveToOrphans(int volume, in Parent p, string canonical)
    {
        string orphan = NextOrphanPath(volume);
        long r = RenameAt2(p.Fd, p.Name, _volumes[volume].RootFd, orphan, RenameNoReplace);
        if (r < 0) return r;
        Journal?.Renamed(volume, canonical, orphan, 0);
        Retarget(volume, canonical, orphan);
        return 0;
    }

    /// <summary>The last description of an orphan closed: it goes for good.</summary>
    private void RemoveOrphan(int volume, string path, bool isDirectory)
    {
        if (UnlinkAt(_volumes[volume].RootFd, path, isDirectory ? AtRemoveDir : 0) != 0) return;
        if (isDirectory) Journal?.RemovedDirectory(volume, path);
        else Journal?.Unlinked(volume, path);
    }
}
