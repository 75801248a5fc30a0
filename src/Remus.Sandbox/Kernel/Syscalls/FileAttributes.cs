using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Volumes;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// chmod, fchmod, fchmodat(2), chown family, utimensat, futimesat, utimes, utime, statfs, fstatfs. A volume's files
/// change (the resulting mode and times are journaled); everything else is read-only (EROFS). Owners are not
/// replicated: a chown that keeps the owner (SQLite's, running as root) succeeds, any other is EPERM.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const long UtimeNow = (1L << 30) - 1, UtimeOmit = (1L << 30) - 2;

    private long SysChmodAt(int dirfd, ulong pathAddr, int mode, int flags)
    {
        if ((flags & ~(AtSymlinkNoFollow | AtEmptyPath)) != 0) return -Errno.EINVAL;
        string path = Memory.ReadCString(pathAddr);
        if (path.Length == 0)
            return (flags & AtEmptyPath) != 0 && dirfd != AtFdCwd ? SysFchmod(dirfd, mode) : -Errno.ENOENT;
        if ((flags & AtSymlinkNoFollow) != 0) return -Errno.EOPNOTSUPP; // Linux: symlinks have no mode to change
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume) return Volumes.ChangeMode(volume, relative, mode);
        return ReadOnlyAnswer(dirfd, path, -Errno.EROFS) == -Errno.EROFS ? -Errno.EROFS : -Errno.ENOENT;
    }

    private long SysFchmod(int fd, int mode)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        return f is VolumeFile v ? v.ChangeMode(mode) : -Errno.EROFS;
    }

    private long SysFchownAt(int dirfd, ulong pathAddr, int uid, int gid, int flags)
    {
        if ((flags & ~(AtSymlinkNoFollow | AtEmptyPath)) != 0) return -Errno.EINVAL;
        string path = Memory.ReadCString(pathAddr);
        if (path.Length == 0)
            return (flags & AtEmptyPath) != 0 && dirfd != AtFdCwd ? SysFchown(dirfd, uid, gid) : -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where != InVolume) return ReadOnlyAnswer(dirfd, path, -Errno.EROFS) == -Errno.EROFS ? -Errno.EROFS : -Errno.ENOENT;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = Volumes.Stat(volume, relative, (flags & AtSymlinkNoFollow) == 0, st);
        return r < 0 ? r : SameOwner(st, uid, gid);
    }

    private long SysFchown(int fd, int uid, int gid)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is not VolumeFile v) return -Errno.EROFS;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = v.Stat(st);
        return r < 0 ? r : SameOwner(st, uid, gid);
    }

    private static long SameOwner(ReadOnlySpan<byte> st, int uid, int gid)
    {
        int owner = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(st[28..]);
        int group = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(st[32..]);
        return (uid == -1 || uid == owner) && (gid == -1 || gid == group) ? 0 : -Errno.EPERM;
    }

    /// <summary>utimensat: times (two struct timespec) or NULL for now; a NULL path means dirfd itself.</summary>
    private long SysUtimensAt(int dirfd, ulong pathAddr, ulong timesAddr, int flags)
    {
        if ((flags & ~(AtSymlinkNoFollow | AtEmptyPath)) != 0) return -Errno.EINVAL;
        Span<long> times = stackalloc long[4];
        if (timesAddr == 0) { times[0] = 0; times[1] = UtimeNow; times[2] = 0; times[3] = UtimeNow; }
        else
        {
            for (int i = 0; i < 4; i++) times[i] = (long)Memory.ReadU64(timesAddr + (ulong)i * 8);
            for (int i = 1; i < 4; i += 2)
                if (times[i] is not (UtimeNow or UtimeOmit) && (times[i] < 0 || times[i] > 999_999_999)) return -Errno.EINVAL;
        }
        string path = pathAddr == 0 ? "" : Memory.ReadCString(pathAddr);
        return ChangeTimes(dirfd, path, times, flags, pathAddr == 0);
    }

    /// <summary>futimesat/utimes: two struct timeval (or NULL for now).</summary>
    private long SysUtimes(int dirfd, ulong pathAddr, ulong timesAddr)
    {
        Span<long> times = stackalloc long[4];
        if (timesAddr == 0) { times[0] = 0; times[1] = UtimeNow; times[2] = 0; times[3] = UtimeNow; }
        else
            for (int i = 0; i < 2; i++)
            {
                long sec = (long)Memory.ReadU64(timesAddr + (ulong)i * 16), usec = (long)Memory.ReadU64(timesAddr + (ulong)i * 16 + 8);
                if (usec < 0 || usec >= 1_000_000) return -Errno.EINVAL;
                times[i * 2] = sec;
                times[i * 2 + 1] = usec * 1000;
            }
        return ChangeTimes(dirfd, Memory.ReadCString(pathAddr), times, 0, fdItself: false);
    }

    /// <summary>utime: struct utimbuf (actime, modtime) or NULL for now.</summary>
    private long SysUtime(ulong pathAddr, ulong timesAddr)
    {
        Span<long> times = stackalloc long[4];
        if (timesAddr == 0) { times[0] = 0; times[1] = UtimeNow; times[2] = 0; times[3] = UtimeNow; }
        else { times[0] = (long)Memory.ReadU64(timesAddr); times[1] = 0; times[2] = (long)Memory.ReadU64(timesAddr + 8); times[3] = 0; }
        return ChangeTimes(AtFdCwd, Memory.ReadCString(pathAddr), times, 0, fdItself: false);
    }

    private long ChangeTimes(int dirfd, string path, ReadOnlySpan<long> times, int flags, bool fdItself)
    {
        if (fdItself || path.Length == 0 && (flags & AtEmptyPath) != 0)
        {
            if (dirfd == AtFdCwd) return fdItself ? -Errno.EFAULT : ChangeTimes(AtFdCwd, ".", times, flags & ~AtEmptyPath, false);
            var f = Fds.Get(dirfd);
            if (f == null) return -Errno.EBADF;
            return f is VolumeFile v ? v.ChangeTimes(times) : -Errno.EROFS;
        }
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume) return Volumes.ChangeTimes(volume, relative, times, (flags & AtSymlinkNoFollow) == 0);
        return ReadOnlyAnswer(dirfd, path, -Errno.EROFS) == -Errno.EROFS ? -Errno.EROFS : -Errno.ENOENT;
    }

    private long SysStatfs(ulong pathAddr, ulong bufAddr)
    {
        string path = Memory.ReadCString(pathAddr);
        if (path.Length == 0) return -Errno.ENOENT;
        Span<byte> buf = stackalloc byte[HostDirectories.StatfsSize];
        long where = Locate(AtFdCwd, path, out int volume, out string relative);
        long r;
        if (where == InVolume) r = Volumes.StatFs(volume, relative, buf);
        else
        {
            string? host = SpecialPath(path, Cwd) != null ? path : Policy.Resolve(path, Cwd);
            if (host == null) return -Errno.ENOENT;
            r = HostStatfs(host, buf);
        }
        if (r == 0) Memory.Write(bufAddr, buf);
        return r;
    }

    private long SysFstatfs(int fd, ulong bufAddr)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        Span<byte> buf = stackalloc byte[HostDirectories.StatfsSize];
        long r = f switch
        {
            VolumeFile v => v.StatFs(buf),
            HostFile h => HostStatfs(h.HostPath, buf),
            _ => -Errno.ENOSYS,
        };
        if (r == 0) Memory.Write(bufAddr, buf);
        return r;
    }

    private static long HostStatfs(string hostPath, Span<byte> buf)
    {
        int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, hostPath, HostDirectories.O_PATH, 0);
        if (fd < 0) return fd;
        try { return HostDirectories.Fstatfs(fd, buf); }
        finally { HostFiles.Close(fd); }
    }
}
