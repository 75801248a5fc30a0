using Remus.Sandbox.Kernel.Volumes;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The calls that make, remove and rename names: mkdir(at), rmdir, unlink(at), rename(at/at2), link(at),
/// symlink(at), umask; and where a guest path lands (<see cref="Locate"/>). Inside a volume they change the volume
/// (Kernel/Volumes/VolumeTable.Changes.cs); elsewhere the file system is read-only (EROFS, or what Linux says
/// first: EEXIST for a name that is there, ENOENT for one that is not). A rename or link between a volume and
/// anything else is EXDEV.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const long InVolume = 1, Elsewhere = 0;

    /// <summary>
    /// Where <paramref name="path"/> (relative to <paramref name="dirfd"/>) is: <see cref="InVolume"/> (with the
    /// volume and the path relative to its root), <see cref="Elsewhere"/>, or a negated errno (a bad dirfd).
    /// </summary>
    private long Locate(int dirfd, string path, out int volume, out string relative)
    {
        volume = -1;
        relative = "";
        if (path.Length == 0) return -Errno.ENOENT;
        string baseDir = Cwd;
        if (!path.StartsWith('/') && dirfd != AtFdCwd)
        {
            var f = Fds.Get(dirfd);
            if (f == null) return -Errno.EBADF;
            if (f is VolumeFile { IsDirectory: false }) return -Errno.ENOTDIR;
            if (f.HostPath == null) return -Errno.EBADF;
            baseDir = f.HostPath;
        }
        if (Volumes.Count == 0) return Elsewhere;
        string full = path.StartsWith('/') ? path : baseDir == "/" ? "/" + path : baseDir + "/" + path;
        if (!Volumes.TryLookup(full, out volume, out relative)) return Elsewhere;
        // A `files` entry (or the program) deeper than the mount point shows through it, as a bind mount on top would.
        string normal = Path.GetFullPath(full);
        if (Policy.DeepestEntry(normal.Length > 1 ? normal.TrimEnd('/') : normal) > Volumes[volume].GuestPath.Length
            && Policy.Resolve(normal, "/") != null)
        {
            volume = -1;
            relative = "";
            return Elsewhere;
        }
        return InVolume;
    }

    /// <summary>What a call that would change a name outside every volume gets: the read-only file system's answer.</summary>
    private long ReadOnlyAnswer(int dirfd, string path, long ifThere)
    {
        TryBaseDir(dirfd, out string baseDir);
        bool there = SpecialPath(path, baseDir) != null || Policy.Resolve(path, baseDir) != null;
        return there ? ifThere : -Errno.EROFS;
    }

    private long SysMkdirAt(int dirfd, ulong pathAddr, int mode)
    {
        string path = Memory.ReadCString(pathAddr);
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        return where == InVolume ? Volumes.MakeDirectory(volume, relative, mode) : ReadOnlyAnswer(dirfd, path, -Errno.EEXIST);
    }

    private long SysRmdir(ulong pathAddr) => UnlinkPath(AtFdCwd, Memory.ReadCString(pathAddr), HostRemoveDir);

    private const int HostRemoveDir = 0x200;

    /// <summary>unlink/unlinkat/rmdir of a path that is not an AF_UNIX socket's name (see SysUnlink).</summary>
    private long UnlinkPath(int dirfd, string path, int flags)
    {
        if ((flags & ~HostRemoveDir) != 0) return -Errno.EINVAL;
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        if (where == InVolume)
            return (flags & HostRemoveDir) != 0 ? Volumes.RemoveDirectory(volume, relative) : Volumes.Unlink(volume, relative);
        TryBaseDir(dirfd, out string baseDir);
        return SpecialPath(path, baseDir) != null || Policy.Resolve(path, baseDir) != null ? -Errno.EROFS : -Errno.ENOENT;
    }

    private long SysRenameAt2(int oldDirfd, ulong oldAddr, int newDirfd, ulong newAddr, uint flags)
    {
        string from = Memory.ReadCString(oldAddr), to = Memory.ReadCString(newAddr);
        if (from.Length == 0 || to.Length == 0) return -Errno.ENOENT;
        long a = Locate(oldDirfd, from, out int va, out string ra);
        if (a < 0) return a;
        long b = Locate(newDirfd, to, out int vb, out string rb);
        if (b < 0) return b;
        if (a == InVolume && b == InVolume) return Volumes.Rename(va, ra, vb, rb, flags);
        if (a == InVolume || b == InVolume) return -VolumeTable.EXDEV;
        return ReadOnlyAnswer(oldDirfd, from, -Errno.EROFS) == -Errno.EROFS ? -Errno.EROFS : -Errno.ENOENT;
    }

    private long SysLinkAt(int oldDirfd, ulong oldAddr, int newDirfd, ulong newAddr, int flags)
    {
        const int AtSymlinkFollow = 0x400;
        if ((flags & ~(AtSymlinkFollow | AtEmptyPath)) != 0) return -Errno.EINVAL;
        string from = Memory.ReadCString(oldAddr), to = Memory.ReadCString(newAddr);
        if (from.Length == 0 || to.Length == 0) return -Errno.ENOENT;
        long a = Locate(oldDirfd, from, out int va, out string ra);
        if (a < 0) return a;
        long b = Locate(newDirfd, to, out int vb, out string rb);
        if (b < 0) return b;
        if (a == InVolume && b == InVolume) return Volumes.Link(va, ra, vb, rb, (flags & AtSymlinkFollow) != 0);
        if (a == InVolume || b == InVolume) return -VolumeTable.EXDEV;
        return ReadOnlyAnswer(newDirfd, to, -Errno.EEXIST);
    }

    private long SysSymlinkAt(ulong targetAddr, int dirfd, ulong pathAddr)
    {
        string target = Memory.ReadCString(targetAddr), path = Memory.ReadCString(pathAddr);
        if (path.Length == 0) return -Errno.ENOENT;
        long where = Locate(dirfd, path, out int volume, out string relative);
        if (where < 0) return where;
        return where == InVolume ? Volumes.Symlink(target, volume, relative) : ReadOnlyAnswer(dirfd, path, -Errno.EEXIST);
    }

    private long SysUmask(int mask)
    {
        int old = Volumes.Umask;
        Volumes.Umask = mask & 0x1FF;
        return old;
    }
}
