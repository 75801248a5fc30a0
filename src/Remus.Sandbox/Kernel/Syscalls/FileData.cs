using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Volumes;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// pwrite64, fsync, fdatasync, sync_file_range, sync, syncfs, truncate, ftruncate, fallocate: a volume's files are
/// the only writable ones (the host file at once; fsync is the host's fsync). Read-only files answer as Linux's
/// do for a file not open for writing.
/// </summary>
internal sealed partial class SandboxKernel
{
    private long SysPWrite(int fd, ulong buf, ulong count, long offset)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is not VolumeFile v) return f is HostFile ? -Errno.EBADF : -Errno.ESPIPE;
        if (offset < 0) return -Errno.EINVAL;
        return WriteFromUser(buf, count, 1 << 30, data => v.PWrite(data, offset));
    }

    private long SysFsync(int fd, bool dataOnly)
    {
        var f = Fds.Get(fd);
        return f switch
        {
            null => -Errno.EBADF,
            VolumeFile v => v.Sync(dataOnly),
            HostFile => 0,
            _ => -Errno.EINVAL,
        };
    }

    private long SysSyncFileRange(int fd, long offset, long nbytes, uint flags)
    {
        if ((flags & ~7u) != 0 || offset < 0 || nbytes < 0) return -Errno.EINVAL;
        var f = Fds.Get(fd);
        return f switch
        {
            null => -Errno.EBADF,
            VolumeFile { IsDirectory: false } v => flags == 0 ? 0 : v.Sync(dataOnly: true),
            VolumeFile or HostFile => 0,
            _ => -Errno.ESPIPE,
        };
    }

    private long SysSync()
    {
        Volumes.SyncAll();
        return 0;
    }

    private long SysSyncfs(int fd)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        return f is VolumeFile v ? Platform.HostDirectories.Syncfs(v.HostFd) : 0;
    }

    private long SysTruncate(ulong pathAddr, long length)
    {
        string path = Memory.ReadCString(pathAddr);
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(AtFdCwd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume) return Volumes.Truncate(volume, relative, length);
        return ReadOnlyAnswer(AtFdCwd, path, -Errno.EROFS) == -Errno.EROFS ? -Errno.EROFS : -Errno.ENOENT;
    }

    private long SysFtruncate(int fd, long length)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        return f is VolumeFile v ? v.Truncate(length) : -Errno.EINVAL;
    }

    private long SysFallocate(int fd, int mode, long offset, long length)
    {
        var f = Fds.Get(fd);
        return f switch
        {
            null => -Errno.EBADF,
            VolumeFile v => v.Allocate(mode, offset, length),
            HostFile => -Errno.EBADF,
            PipeFile => -Errno.ESPIPE,
            _ => -Errno.ENODEV,
        };
    }
}
