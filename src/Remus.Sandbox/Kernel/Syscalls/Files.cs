using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// openat, close, fstat, newfstatat, getdents64, readlinkat, faccessat, getcwd, dup*, fcntl. A path under a volume's
/// mount point goes to the volume (Kernel/Volumes, read-write; volumes win over `files`); anything else is the
/// read-only view of `files`.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtEmptyPath = 0x1000;
    private const int O_ACCMODE = 3, O_CREAT = 0x40, O_TRUNC = 0x200, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000,
        O_CLOEXEC = 0x80000;
    private const string Cwd = "/";

    /// <summary>The directory a relative path starts from (AT_FDCWD: the cwd, "/").</summary>
    private bool TryBaseDir(int dirfd, out string dir)
    {
        dir = Cwd;
        if (dirfd == AtFdCwd) return true;
        var f = Fds.Get(dirfd);
        if (f?.HostPath == null) return false;
        dir = f.HostPath;
        return true;
    }

    private long SysOpenAt(int dirfd, ulong pathAddr, int flags, int mode)
    {
        string path = Memory.ReadCString(pathAddr);
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume)
        {
            long opened = Volumes.Open(volume, relative, flags, mode, out var file);
            if (opened < 0) return opened;
            long added = Fds.Add(file!, (flags & O_CLOEXEC) != 0);
            if (added < 0) file!.Release();
            return added;
        }
        TryBaseDir(dirfd, out string baseDir);
        if (SpecialPath(path, baseDir) is { } special) return OpenSpecial(special, flags);
        string? host = Policy.Resolve(path, baseDir);
        if (host == null) return (flags & O_CREAT) != 0 ? -Errno.EROFS : -Errno.ENOENT;
        if ((flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC)) != 0) return -Errno.EROFS;
        int fd = HostFiles.OpenRead(host, (flags & O_NOFOLLOW) != 0);
        if (fd < 0) return fd;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        HostFiles.Stat(fd, st);
        bool isDir = (BinaryPrimitives.ReadUInt32LittleEndian(st[24..]) & 0xF000) == 0x4000;
        if ((flags & O_DIRECTORY) != 0 && !isDir)
        {
            HostFiles.Close(fd);
            return -Errno.ENOTDIR;
        }
        long r = Fds.Add(new HostFile(fd, host, isDir) { Flags = flags & ~O_CLOEXEC }, (flags & O_CLOEXEC) != 0);
        if (r < 0) HostFiles.Close(fd);
        return r;
    }

    private long SysFstat(int fd, ulong statAddr)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = f.Stat(st);
        if (r == 0) Memory.Write(statAddr, st);
        return r;
    }

    private long SysStatAt(int dirfd, ulong pathAddr, ulong statAddr, int flags)
    {
        string path = Memory.ReadCString(pathAddr);
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = StatAt(dirfd, path, flags, st);
        if (r == 0) Memory.Write(statAddr, st);
        return r;
    }

    /// <summary>stat of <paramref name="path"/> relative to <paramref name="dirfd"/> into <paramref name="st"/> (struct
    /// stat); 0 or a negated errno. Shared by newfstatat and statx.</summary>
    private long StatAt(int dirfd, string path, int flags, Span<byte> st)
    {
        if (path.Length == 0)
        {
            if ((flags & AtEmptyPath) == 0) return -Errno.ENOENT;
            if (dirfd == AtFdCwd) return StatHostPath(Cwd, flags, st);
            return Fds.Get(dirfd) is { } f ? f.Stat(st) : -Errno.EBADF;
        }
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume) return Volumes.Stat(volume, relative, (flags & AtSymlinkNoFollow) == 0, st);
        TryBaseDir(dirfd, out string baseDir);
        if (SpecialPath(path, baseDir) is { } special) return StatSpecial(special, st);
        string? host = Policy.Resolve(path, baseDir);
        if (host == null && Volumes.Count > 0 && Volumes.VolumeBelow(path.StartsWith('/') ? path : baseDir + "/" + path) is >= 0 and int below)
            return Volumes.Stat(below, "", follow: true, st); // a directory above a mount point
        return host == null ? -Errno.ENOENT : StatHostPath(host, flags, st);
    }

    private long StatHostPath(string host, int flags, Span<byte> st)
    {
        if (Policy.Resolve(host, Cwd) == null) return -Errno.ENOENT;
        return HostFiles.StatPath(host, (flags & AtSymlinkNoFollow) != 0, st);
    }

    private long SysGetDents64(int fd, ulong buf, ulong count)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        return ReadIntoUser(buf, count, 1 << 20, f.GetDents64);
    }

    private long SysReadLinkAt(int dirfd, ulong pathAddr, ulong buf, ulong size)
    {
        string path = Memory.ReadCString(pathAddr);
        if ((long)size <= 0) return -Errno.EINVAL;
        int n = ClampLength(buf, size, 4096);
        if (path == FileAccessPolicy.SelfExe)
        {
            byte[] target = Encoding.UTF8.GetBytes(Policy.ProgramPath);
            int len = Math.Min(target.Length, n);
            Memory.Write(buf, target.AsSpan(0, len));
            return len;
        }
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        Span<byte> tmp = stackalloc byte[4096];
        if (where == InVolume)
        {
            long v = Volumes.ReadLink(volume, relative, tmp[..n]);
            if (v > 0) Memory.Write(buf, tmp[..(int)v]);
            return v;
        }
        TryBaseDir(dirfd, out string baseDir);
        string? host = Policy.Resolve(path, baseDir);
        if (host == null) return -Errno.ENOENT;
        long r = HostFiles.ReadLink(host, tmp[..n]);
        if (r > 0) Memory.Write(buf, tmp[..(int)r]);
        return r;
    }

    private long SysAccessAt(int dirfd, ulong pathAddr, int mode, int flags = 0)
    {
        string path = Memory.ReadCString(pathAddr);
        if ((mode & ~7) != 0 || (flags & ~(0x200 /* AT_EACCESS */ | AtSymlinkNoFollow | AtEmptyPath)) != 0) return -Errno.EINVAL;
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume) return Volumes.Access(volume, relative, mode, (flags & AtSymlinkNoFollow) == 0);
        TryBaseDir(dirfd, out string baseDir);
        if (SpecialPath(path, baseDir) is { } special) return AccessSpecial(special, mode);
        string? host = Policy.Resolve(path, baseDir);
        if (host == null && Volumes.Count > 0 && Volumes.VolumeBelow(path.StartsWith('/') ? path : baseDir + "/" + path) >= 0)
            return (mode & 2) != 0 ? -Errno.EROFS : 0;
        if (host == null) return -Errno.ENOENT;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = HostFiles.StatPath(host, false, st);
        if (r < 0) return r;
        if ((mode & 2) != 0) return -Errno.EROFS; // W_OK: everything is read-only
        return 0;
    }

    private long SysGetCwd(ulong buf, ulong size)
    {
        if (size < 2) return -Errno.ERANGE;
        Memory.Write(buf, "/\0"u8);
        return 2;
    }

    private long SysDup(int fd)
    {
        var f = Fds.Get(fd);
        return f == null ? -Errno.EBADF : Fds.Add(f, false);
    }

    private long SysDup3(int oldFd, int newFd, int flags, bool allowSame)
    {
        // Linux's order of checks (dup2 is dup3 without flags that allows oldFd == newFd).
        if ((flags & ~O_CLOEXEC) != 0) return -Errno.EINVAL;
        var f = Fds.Get(oldFd);
        if (oldFd == newFd) return !allowSame ? -Errno.EINVAL : f == null ? -Errno.EBADF : newFd;
        if (newFd < 0 || newFd >= Fds.Limit) return -Errno.EBADF; // RLIMIT_NOFILE
        if (f == null) return -Errno.EBADF;
        Fds.Set(newFd, f, (flags & O_CLOEXEC) != 0);
        return newFd;
    }

    private const int F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_DUPFD_CLOEXEC = 1030,
        F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7, F_OFD_GETLK = 36,
        F_OFD_SETLK = 37, F_OFD_SETLKW = 38;

    /// <summary>The flags F_SETFL may change (Linux's SETFL_MASK): O_APPEND, O_NONBLOCK, FASYNC, O_DIRECT, O_NOATIME.</summary>
    private const int SetFlMask = 0x400 | 0x800 | 0x2000 | 0x4000 | 0x40000;

    private long SysFcntl(int fd, int cmd, ulong arg)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        return cmd switch
        {
            F_DUPFD or F_DUPFD_CLOEXEC => arg >= (ulong)Fds.Limit ? -Errno.EINVAL : Fds.Add(f, cmd == F_DUPFD_CLOEXEC, (int)arg),
            F_GETFD => Fds.GetCloseOnExec(fd) ? 1 : 0,
            F_SETFD => SetCloexec(fd, (arg & 1) != 0),
            // Pipes and the anonymous-inode files (eventfd, timerfd, epoll) keep exactly their flags (no O_LARGEFILE).
            F_GETFL => f is PipeFile or EventFdFile or TimerFdFile or EpollFile or SocketFile ? f.Flags
                : f.Flags | (f is ConsoleFile c ? (c.Stream == 0 ? 0 : 1) : 0) | 0x8000 /* O_LARGEFILE */,
            F_SETFL => SetStatusFlags(f, (int)arg),
            F_GETPIPE_SZ => f is PipeFile p ? (long)p.Pipe.MaxSlots * Pipe.PageSize : -Errno.EBADF,
            F_SETPIPE_SZ => f is PipeFile p ? p.Pipe.Resize((long)arg) : -Errno.EBADF,
            F_GETLK or F_SETLK or F_SETLKW or F_OFD_GETLK or F_OFD_SETLK or F_OFD_SETLKW => SysFcntlLock(fd, f, cmd, arg),
            _ => -Errno.EINVAL,
        };
    }

    private static long SetStatusFlags(FileDescription f, int flags)
    {
        f.Flags = (f.Flags & ~SetFlMask) | (flags & SetFlMask);
        return 0;
    }

    private long SetCloexec(int fd, bool value)
    {
        Fds.SetCloseOnExec(fd, value);
        return 0;
    }
}
