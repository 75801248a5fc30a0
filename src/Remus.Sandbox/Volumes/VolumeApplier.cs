using System.Buffers;
using K4os.Compression.LZ4;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// The receiver's side: applies VOLUME_OPS bodies to its copies of the volumes, each confined to its root fd. Every
/// path is resolved inside the root with openat2 RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS (canonical paths have no
/// symlink in them, so meeting one means the body is not ours: refused), the last component handled by an *at call
/// on its parent that does not follow it. Strict: an op that fails throws (the copy no longer matches the sender's).
/// Open fds are cached within one <see cref="Apply"/> and dropped when a path at or above theirs changes.
/// </summary>
internal sealed class VolumeApplier
{
    private const ulong Confined = HostDirectories.ResolveInRoot | HostDirectories.ResolveNoSymlinks;
    private const int ONonblock = 0x800, Enoent = 2, Enotdir = 20, Eloop = 40, Eopnotsupp = 95;

    private readonly IVolumeRoots _roots;
    private readonly Dictionary<(int, string), int> _dirs = [], _files = [];

    /// <summary>A DIR listing split over several ops (flag MORE): its directory and the names so far.</summary>
    private (int Volume, string Path, HashSet<string> Names)? _listing;

    public VolumeApplier(IVolumeRoots roots) => _roots = roots;

    /// <summary>Checks a whole body (framing, bounds, paths) without touching the disk.</summary>
    public void Validate(ReadOnlySpan<byte> body)
    {
        var reader = new VolumeOpReader(body, _roots.Count);
        while (reader.Next(out _)) { }
    }

    public void Apply(ReadOnlySpan<byte> body)
    {
        Validate(body);
        var reader = new VolumeOpReader(body, _roots.Count);
        try
        {
            while (reader.Next(out var op))
            {
                if (_listing is { } l && (op.Kind != VolumeOpKind.Dir || op.Volume != l.Volume || op.Path != l.Path))
                    throw new InvalidDataException("VOLUME_OPS: a DIR listing marked MORE is not continued");
                ApplyOne(op);
            }
        }
        finally { CloseAll(); }
    }

    private void ApplyOne(in VolumeOp op)
    {
        int v = op.Volume;
        switch (op.Kind)
        {
            case VolumeOpKind.Create:
            {
                var (parent, name) = Parent(v, op.Path);
                int fd = Check(HostDirectories.OpenAt2(parent, name, HostDirectories.O_WRONLY | HostDirectories.O_CREAT | HostDirectories.O_EXCL | HostDirectories.O_NOFOLLOW,
                    (int)op.Mode, HostDirectories.ResolveBeneath | HostDirectories.ResolveNoSymlinks), op);
                _files[(v, op.Path)] = fd;
                Check(HostDirectories.Fchmod(fd, (int)op.Mode), op);
                break;
            }
            case VolumeOpKind.Write:
                WriteData(op);
                break;
            case VolumeOpKind.Truncate:
                Check(HostDirectories.Truncate(WriteFd(op), op.A), op);
                break;
            case VolumeOpKind.Fallocate:
            {
                int fd = WriteFd(op);
                long r = HostDirectories.Fallocate(fd, 0, op.A, op.B);
                if (r == -Eopnotsupp) r = GrowTo(fd, op.A + op.B);
                Check(r, op);
                break;
            }
            case VolumeOpKind.Mkdir:
            {
                var (parent, name) = Parent(v, op.Path);
                Check(HostDirectories.MkdirAt(parent, name, (int)op.Mode), op);
                Check(HostDirectories.ChmodAt(parent, name, (int)op.Mode, 0), op);
                break;
            }
            case VolumeOpKind.Rmdir:
            {
                var (parent, name) = Parent(v, op.Path);
                Forget(v, op.Path);
                Check(HostDirectories.UnlinkAt(parent, name, HostDirectories.AtRemoveDir), op);
                break;
            }
            case VolumeOpKind.Unlink:
            {
                var (parent, name) = Parent(v, op.Path);
                Forget(v, op.Path);
                Check(HostDirectories.UnlinkAt(parent, name, 0), op);
                break;
            }
            case VolumeOpKind.Rename:
            {
                var (fromDir, fromName) = Parent(v, op.Path);
                var (toDir, toName) = Parent(v, op.Other);
                Forget(v, op.Path);
                Forget(v, op.Other);
                Check(HostDirectories.RenameAt2(fromDir, fromName, toDir, toName, op.Mode), op);
                break;
            }
            case VolumeOpKind.Link:
            {
                var (exDir, exName) = Parent(v, op.Other);
                var (newDir, newName) = Parent(v, op.Path);
                Check(HostDirectories.LinkAt(exDir, exName, newDir, newName, 0), op);
                break;
            }
            case VolumeOpKind.Symlink:
            {
                var (parent, name) = Parent(v, op.Path);
                Check(HostDirectories.SymlinkAt(op.Other, parent, name), op);
                break;
            }
            case VolumeOpKind.Chmod:
                Chmod(v, op.Path, op.Mode, op);
                break;
            case VolumeOpKind.Utimes:
                SetTimes(v, op.Path, op.A, op.B, op);
                break;
            case VolumeOpKind.Reset:
                Reset(v);
                break;
            case VolumeOpKind.File:
                ReplaceByFile(op);
                break;
            case VolumeOpKind.Dir:
                Directory(op);
                break;
            case VolumeOpKind.Absent:
                Absent(v, op.Path);
                break;
            default:
                throw new InvalidDataException($"VOLUME_OPS: op {op.Kind}");
        }
    }

    private void WriteData(in VolumeOp op)
    {
        int fd = WriteFd(op);
        ReadOnlySpan<byte> data = op.Data;
        byte[]? scratch = null;
        try
        {
            if (op.Compressed)
            {
                scratch = ArrayPool<byte>.Shared.Rent(op.RawLength);
                int n = LZ4Codec.Decode(op.Data, scratch.AsSpan(0, op.RawLength));
                if (n != op.RawLength) throw new InvalidDataException($"VOLUME_OPS: WRITE to '{op.Path}' does not decode to {op.RawLength} bytes");
                data = scratch.AsSpan(0, n);
            }
            long at = op.A;
            while (!data.IsEmpty)
            {
                long w = HostDirectories.PWrite(fd, data, at);
                Check(w, op);
                if (w == 0) throw Failed(op, "write made no progress");
                data = data[(int)w..];
                at += w;
            }
        }
        finally { if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch); }
    }

    private static long GrowTo(int fd, long end)
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = HostFiles.Stat(fd, st);
        if (r < 0) return r;
        return HostStat.Parse(st).Size >= end ? 0 : HostDirectories.Truncate(fd, end);
    }

    private void Chmod(int v, string path, uint mode, in VolumeOp op)
    {
        int fd = Check(HostDirectories.OpenAt2(_roots.RootFd(v), path.Length == 0 ? "." : path, HostDirectories.O_PATH | HostDirectories.O_NOFOLLOW, 0, Confined), op);
        try { Check(HostDirectories.ChmodAt(HostDirectories.AtFdCwd, $"/proc/self/fd/{fd}", (int)mode, 0), op); }
        finally { HostFiles.Close(fd); }
    }

    private void SetTimes(int v, string path, long atimeNs, long mtimeNs, in VolumeOp op)
    {
        Span<long> t = [Math.DivRem(atimeNs, 1_000_000_000L, out long an) + (an < 0 ? -1 : 0), an < 0 ? an + 1_000_000_000L : an,
                        Math.DivRem(mtimeNs, 1_000_000_000L, out long mn) + (mn < 0 ? -1 : 0), mn < 0 ? mn + 1_000_000_000L : mn];
        if (path.Length == 0) { Check(HostDirectories.UtimensAt(_roots.RootFd(v), ".", t, 0), op); return; }
        var (parent, name) = Parent(v, path);
        Check(HostDirectories.UtimensAt(parent, name, t, HostDirectories.AtSymlinkNoFollow), op);
    }

    private void Reset(int v)
    {
        _listing = null;
        ForgetVolume(v);
        int fd = HostDirectories.OpenAt2(_roots.RootFd(v), ".", HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY, 0, Confined);
        if (fd < 0) throw new IOException($"volume {v}: cannot open its root to reset it: errno {-fd}");
        try { VolumeTreeRemoval.RemoveContents(fd); }
        finally { HostFiles.Close(fd); }
    }

    private void ReplaceByFile(in VolumeOp op)
    {
        int v = op.Volume;
        var (parent, name) = Parent(v, op.Path);
        Forget(v, op.Path);
        VolumeTreeRemoval.RemoveAny(parent, name);
        int fd = Check(HostDirectories.OpenAt2(parent, name, HostDirectories.O_WRONLY | HostDirectories.O_CREAT | HostDirectories.O_EXCL | HostDirectories.O_NOFOLLOW,
            (int)op.Mode, HostDirectories.ResolveBeneath | HostDirectories.ResolveNoSymlinks), op);
        _files[(v, op.Path)] = fd;
        Check(HostDirectories.Fchmod(fd, (int)op.Mode), op);
        if (op.A > 0) Check(HostDirectories.Truncate(fd, op.A), op);
        SetTimes(v, op.Path, op.B, op.C, op);
    }

    private void Directory(in VolumeOp op)
    {
        int v = op.Volume;
        if (_listing is null)
        {
            if (op.Path.Length > 0)
            {
                var (parent, name) = Parent(v, op.Path);
                Span<byte> st = stackalloc byte[HostFiles.StatSize];
                long r = HostDirectories.StatAt(parent, name, HostDirectories.AtSymlinkNoFollow, st);
                if (r < 0 && r != -Enoent) throw Failed(op, $"errno {-r}");
                if (r < 0 || !HostStat.Parse(st).IsDirectory)
                {
                    Forget(v, op.Path);
                    if (r == 0) VolumeTreeRemoval.RemoveAny(parent, name);
                    Check(HostDirectories.MkdirAt(parent, name, (int)op.Mode), op);
                }
            }
            Chmod(v, op.Path, op.Mode, op);
            _listing = (v, op.Path, new HashSet<string>(StringComparer.Ordinal));
        }
        _listing.Value.Names.UnionWith(op.Names());
        if (op.More) return;
        var keep = _listing.Value.Names;
        _listing = null;
        int fd = Check(HostDirectories.OpenAt2(_roots.RootFd(v), op.Path.Length == 0 ? "." : op.Path,
            HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY | HostDirectories.O_NOFOLLOW, 0, Confined), op);
        try
        {
            foreach (var (child, _) in HostDirectoryListing.Read(fd))
            {
                if (keep.Contains(child)) continue;
                Forget(v, VolumePath.Join(op.Path, child));
                VolumeTreeRemoval.RemoveAny(fd, child);
            }
        }
        finally { HostFiles.Close(fd); }
    }

    private void Absent(int v, string path)
    {
        var (parentPath, name) = VolumePath.Split(path);
        Forget(v, path);
        int parent = TryDir(v, parentPath);
        if (parent is -Enoent or -Enotdir or -Eloop) return;     // an ancestor is gone or not a directory: so is the path
        if (parent < 0) throw new IOException($"volume {v}: ABSENT '{path}': errno {-parent}");
        VolumeTreeRemoval.RemoveAny(parent, name);
    }

    /// <summary>The open fd of a file to write (cached), resolved inside the root without following any symlink.</summary>
    private int WriteFd(in VolumeOp op)
    {
        if (_files.TryGetValue((op.Volume, op.Path), out int fd)) return fd;
        fd = Check(HostDirectories.OpenAt2(_roots.RootFd(op.Volume), op.Path, HostDirectories.O_WRONLY | HostDirectories.O_NOFOLLOW | ONonblock, 0, Confined), op);
        _files[(op.Volume, op.Path)] = fd;
        return fd;
    }

    /// <summary>The parent directory's fd (cached) and the last component.</summary>
    private (int Dir, string Name) Parent(int v, string path)
    {
        var (parentPath, name) = VolumePath.Split(path);
        int fd = TryDir(v, parentPath);
        if (fd < 0) throw new IOException($"volume {v}: cannot open the directory of '{path}' in the copy: errno {-fd}");
        return (fd, name);
    }

    private int TryDir(int v, string path)
    {
        if (path.Length == 0) return _roots.RootFd(v);
        if (_dirs.TryGetValue((v, path), out int fd)) return fd;
        fd = HostDirectories.OpenAt2(_roots.RootFd(v), path, HostDirectories.O_PATH | HostDirectories.O_DIRECTORY | HostDirectories.O_NOFOLLOW, 0, Confined);
        if (fd >= 0) _dirs[(v, path)] = fd;
        return fd;
    }

    /// <summary>Drops cached fds at or below <paramref name="path"/> (its names are about to change).</summary>
    private void Forget(int v, string path)
    {
        Drop(_dirs, v, path);
        Drop(_files, v, path);

        static void Drop(Dictionary<(int, string), int> cache, int v, string path)
        {
            if (cache.Count == 0) return;
            List<(int, string)>? gone = null;
            foreach (var key in cache.Keys)
                if (key.Item1 == v && VolumePath.IsAtOrBelow(key.Item2, path)) (gone ??= []).Add(key);
            if (gone is null) return;
            foreach (var key in gone)
            {
                HostFiles.Close(cache[key]);
                cache.Remove(key);
            }
        }
    }

    private void ForgetVolume(int v) => Forget(v, "");

    private void CloseAll()
    {
        foreach (int fd in _dirs.Values) HostFiles.Close(fd);
        foreach (int fd in _files.Values) HostFiles.Close(fd);
        _dirs.Clear();
        _files.Clear();
    }

    private static int Check(int r, in VolumeOp op) => r >= 0 ? r : throw Failed(op, $"errno {-r}");

    private static long Check(long r, in VolumeOp op) => r >= 0 ? r : throw Failed(op, $"errno {-r}");

    private static IOException Failed(in VolumeOp op, string why) =>
        new($"volume {op.Volume}: cannot apply {op.Kind.ToString().ToUpperInvariant()} '{op.Path}'{(op.Other.Length > 0 && op.Kind != VolumeOpKind.Symlink ? $" / '{op.Other}'" : "")}: {why}");
}
