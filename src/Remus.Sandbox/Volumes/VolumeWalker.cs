using System.Buffers;
using System.Text;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// The sender's copy rounds. The first (<see cref="SendAll"/>) sends every volume whole: RESET, then each directory
/// (DIR with its listing), file (FILE, then its data as WRITEs of at most 1 MiB, holes skipped with SEEK_DATA, then
/// UTIMES), symlink, and a file whose inode was already sent as LINK. Later rounds (<see cref="SendPaths"/>) send the
/// current state of each remembered path. Everything is read live through the volume's root fd, confined to it
/// (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS), while the program may be changing it: whatever changes meanwhile
/// is remembered for the next round. Bodies are handed to the emitter as they fill.
/// </summary>
internal sealed class VolumeWalker
{
    private const ulong Confined = HostDirectories.ResolveInRoot | HostDirectories.ResolveNoSymlinks;
    private const int SeekData = 3, SeekHole = 4, Enoent = 2, Enotdir = 20, Eloop = 40, Enxio = 6;

    private readonly IVolumeRoots _roots;
    private readonly VolumeBatchWriter _ops = new();

    /// <summary>Paths seen per hard-linked inode (links > 1), kept across the rounds of one copy.</summary>
    private readonly Dictionary<(ulong Dev, ulong Ino), List<(int Volume, string Path)>> _links = [];

    /// <summary>The inode each name in <see cref="_links"/> had when it was sent.</summary>
    private readonly Dictionary<(int Volume, string Path), (ulong Dev, ulong Ino)> _pathInode = [];

    /// <summary>The inodes sent in the current round and the path they were sent at.</summary>
    private readonly Dictionary<(ulong Dev, ulong Ino), (int Volume, string Path)> _sent = [];

    /// <summary>Names sent in the current round (a later round's hard links are rebuilt for the others).</summary>
    private readonly HashSet<(int Volume, string Path)> _sentPaths = [];

    /// <summary>Files of several names resent in the current round: the receiver got a new inode, to be linked again.</summary>
    private readonly List<(int Volume, string Path, HostStat Stat)> _relink = [];

    private Action<ReadOnlySpan<byte>> _emit = _ => { };
    private bool _replace;
    private long _data;

    public VolumeWalker(IVolumeRoots roots) => _roots = roots;

    /// <summary>Round 1: every volume whole. Returns the bytes of file data sent.</summary>
    public long SendAll(Action<ReadOnlySpan<byte>> emit)
    {
        Start(emit, replace: false);
        _links.Clear();
        _pathInode.Clear();
        for (int v = 0; v < _roots.Count; v++)
        {
            _ops.Reset(v);
            SendDirectory(v, "", recursive: true);
        }
        return Finish();
    }

    /// <summary>A later round: the current state of each path (value: with everything below it). Returns file data bytes.</summary>
    public long SendPaths(Dictionary<(int Volume, string Path), bool> dirty, Action<ReadOnlySpan<byte>> emit)
    {
        Start(emit, replace: true);
        dirty = WithOtherNames(dirty);
        var order = dirty.Keys.ToList();
        order.Sort((a, b) => a.Volume != b.Volume ? a.Volume.CompareTo(b.Volume) : string.CompareOrdinal(a.Path, b.Path));
        var whole = new HashSet<(int, string)>();
        foreach (var (v, path) in order)
        {
            if (BelowSentWhole(whole, v, path)) continue;
            bool recursive = dirty[(v, path)];
            SendPath(v, path, recursive);
            if (recursive) whole.Add((v, path));
        }
        Relink();
        return Finish();
    }

    /// <summary>
    /// A changed name of a hard-linked file changes what its other names show (a write through it, then perhaps its
    /// unlink): every name the inode had when last sent is resent too.
    /// </summary>
    private Dictionary<(int Volume, string Path), bool> WithOtherNames(Dictionary<(int Volume, string Path), bool> dirty)
    {
        if (_pathInode.Count == 0) return dirty;
        var all = new Dictionary<(int Volume, string Path), bool>(dirty);
        foreach (var key in dirty.Keys)
        {
            if (!_pathInode.TryGetValue(key, out var inode) || !_links.TryGetValue(inode, out var names)) continue;
            foreach (var name in names) all.TryAdd(name, false);
        }
        return all;
    }

    private void Start(Action<ReadOnlySpan<byte>> emit, bool replace)
    {
        _emit = emit;
        _replace = replace;
        _data = 0;
        _sent.Clear();
        _sentPaths.Clear();
        _relink.Clear();
        _ops.Clear();
    }

    private long Finish()
    {
        try { _ops.Drain(_emit); }
        finally { _emit = _ => { }; _sent.Clear(); }
        return _data;
    }

    private static bool BelowSentWhole(HashSet<(int, string)> whole, int v, string path)
    {
        if (whole.Count == 0) return false;
        for (string p = path; p.Length > 0;)
        {
            p = VolumePath.Split(p).Parent;
            if (whole.Contains((v, p))) return true;
        }
        return false;
    }

    private void Streamed() => _ops.DrainFinished(_emit);

    /// <summary>Sends whatever is at <paramref name="path"/> now, or ABSENT.</summary>
    private void SendPath(int v, string path, bool recursive)
    {
        if (path.Length == 0) { SendDirectory(v, "", recursive); return; }
        var (parent, name) = VolumePath.Split(path);
        int dirFd = OpenDirectory(v, parent, HostDirectories.O_PATH);
        if (dirFd < 0)
        {
            if (dirFd is -Enoent or -Enotdir or -Eloop) { _ops.Absent(v, path); Streamed(); return; }
            throw new IOException($"volume {v}: cannot open '{parent}': errno {-dirFd}");
        }
        try
        {
            Span<byte> st = stackalloc byte[HostFiles.StatSize];
            long r = HostDirectories.StatAt(dirFd, name, HostDirectories.AtSymlinkNoFollow, st);
            if (r == -Enoent || r == -Enotdir) { _ops.Absent(v, path); Streamed(); return; }
            if (r < 0) throw new IOException($"volume {v}: stat '{path}': errno {-r}");
            SendNode(v, path, dirFd, name, HostStat.Parse(st), recursive);
        }
        finally { HostFiles.Close(dirFd); }
    }

    private void SendNode(int v, string path, int dirFd, string name, HostStat st, bool recursive)
    {
        if (st.IsRegular) SendFile(v, path, dirFd, name, st);
        else if (st.IsDirectory) SendDirectory(v, path, recursive);
        else if (st.IsSymlink) SendSymlink(v, path, dirFd, name);
        else if (_replace) _ops.Absent(v, path);     // fifos, sockets, devices: not replicated
        Streamed();
    }

    private void SendDirectory(int v, string path, bool recursive)
    {
        int fd = OpenDirectory(v, path, HostDirectories.O_RDONLY);
        if (fd < 0)
        {
            // Gone or replaced since it was seen: it was changed, so the next round has it.
            if (fd is -Enoent or -Enotdir or -Eloop) { if (_replace && path.Length > 0) _ops.Absent(v, path); return; }
            throw new IOException($"volume {v}: cannot open directory '{path}': errno {-fd}");
        }
        try
        {
            Span<byte> st = stackalloc byte[HostFiles.StatSize];
            long r = HostFiles.Stat(fd, st);
            if (r < 0) throw new IOException($"volume {v}: stat '{path}': errno {-r}");
            var entries = HostDirectoryListing.Read(fd);
            var names = new List<string>(entries.Count);
            foreach (var e in entries) names.Add(e.Name);
            _ops.Dir(v, path, HostStat.Parse(st).Permissions, names);
            Streamed();
            if (!recursive) return;
            foreach (var (child, _) in entries)
            {
                long s = HostDirectories.StatAt(fd, child, HostDirectories.AtSymlinkNoFollow, st);
                if (s == -Enoent) continue;         // removed meanwhile: remembered for the next round
                if (s < 0) throw new IOException($"volume {v}: stat '{VolumePath.Join(path, child)}': errno {-s}");
                SendNode(v, VolumePath.Join(path, child), fd, child, HostStat.Parse(st), true);
            }
        }
        finally { HostFiles.Close(fd); }
    }

    private void SendSymlink(int v, string path, int dirFd, string name)
    {
        Span<byte> buf = stackalloc byte[VolumeOpsFormat.MaxTargetBytes + 1];
        long n = HostDirectories.ReadLinkAt(dirFd, name, buf);
        if (n == -Enoent) { if (_replace) _ops.Absent(v, path); return; }
        if (n <= 0 || n > VolumeOpsFormat.MaxTargetBytes) throw new IOException($"volume {v}: readlink '{path}': {(n < 0 ? $"errno {-n}" : "bad length")}");
        if (_replace) _ops.Absent(v, path);
        _ops.Symlink(v, Encoding.UTF8.GetString(buf[..(int)n]), path);
    }

    private void SendFile(int v, string path, int dirFd, string name, HostStat seen)
    {
        if (seen.Links > 1 && LinkedToSent(v, path, seen)) return;
        int fd = HostDirectories.OpenAt2(dirFd, name, HostDirectories.O_RDONLY | HostDirectories.O_NOFOLLOW, 0, HostDirectories.ResolveNoSymlinks | HostDirectories.ResolveBeneath);
        if (fd < 0)
        {
            if (fd is -Enoent or -Eloop or -Enotdir) { if (_replace) _ops.Absent(v, path); return; }
            throw new IOException($"volume {v}: cannot open '{path}': errno {-fd}");
        }
        try
        {
            Span<byte> stb = stackalloc byte[HostFiles.StatSize];
            long r = HostFiles.Stat(fd, stb);
            if (r < 0) throw new IOException($"volume {v}: stat '{path}': errno {-r}");
            var st = HostStat.Parse(stb);
            if (st.Links > 1) Remember(v, path, st);
            _ops.File(v, path, st.Permissions, st.Size, st.AtimeNs, st.MtimeNs);
            if (SendData(v, path, fd, st.Size)) _ops.Utimes(v, path, st.AtimeNs, st.MtimeNs);
            Streamed();
            if (_replace && st.Links > 1) _relink.Add((v, path, st));
        }
        finally { HostFiles.Close(fd); }
    }

    /// <summary>The data regions of the file's first <paramref name="size"/> bytes as WRITEs. True if any was sent.</summary>
    private bool SendData(int v, string path, int fd, long size)
    {
        byte[] buf = ArrayPool<byte>.Shared.Rent(VolumeOpsFormat.MaxWriteBytes);
        bool any = false;
        try
        {
            long pos = 0;
            while (pos < size)
            {
                long data = HostFiles.Seek(fd, pos, SeekData);
                if (data == -Enxio) break;
                long hole;
                if (data < 0) { data = pos; hole = size; }         // no SEEK_DATA on this file system: read it all
                else
                {
                    hole = HostFiles.Seek(fd, data, SeekHole);
                    if (hole < 0) hole = size;
                }
                hole = Math.Min(hole, size);
                for (long at = data; at < hole;)
                {
                    int want = (int)Math.Min(VolumeOpsFormat.MaxWriteBytes, hole - at);
                    long n = HostFiles.PRead(fd, buf.AsSpan(0, want), at);
                    if (n < 0) throw new IOException($"volume {v}: read '{path}': errno {-n}");
                    if (n == 0) return any;                        // shrunk meanwhile: the next round has it
                    _ops.Write(v, path, at, buf.AsSpan(0, (int)n));
                    _data += n;
                    any = true;
                    at += n;
                    Streamed();
                }
                pos = hole;
            }
            return any;
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
    }

    /// <summary>A file whose inode went out earlier in this round is sent as a LINK to that path.</summary>
    private bool LinkedToSent(int v, string path, HostStat st)
    {
        if (!_sent.TryGetValue((st.Device, st.Inode), out var first) || first.Volume != v) return false;
        if (_replace) _ops.Absent(v, path);
        _ops.Link(v, first.Path, path);
        Remember(v, path, st);
        return true;
    }

    private void Remember(int v, string path, HostStat st)
    {
        var key = (st.Device, st.Inode);
        _sent.TryAdd(key, (v, path));
        _sentPaths.Add((v, path));
        if (!_links.TryGetValue(key, out var paths)) _links[key] = paths = [];
        if (!paths.Contains((v, path))) paths.Add((v, path));
        _pathInode[(v, path)] = key;
    }

    /// <summary>
    /// End of a later round: a hard-linked file resent in it became a new inode on the receiver, so its other names
    /// known from earlier rounds that were not sent in this one (and are still that inode here) are linked to it again.
    /// </summary>
    private void Relink()
    {
        Span<byte> stb = stackalloc byte[HostFiles.StatSize];
        foreach (var (v, path, st) in _relink)
        {
            if (!_links.TryGetValue((st.Device, st.Inode), out var paths)) continue;
            if (!SameInode(v, path, st, stb)) continue;
            for (int i = paths.Count - 1; i >= 0; i--)
            {
                var (pv, other) = paths[i];
                if (pv != v || other == path || _sentPaths.Contains((pv, other))) continue;
                if (!SameInode(v, other, st, stb)) { paths.RemoveAt(i); continue; }
                _ops.Absent(v, other);
                _ops.Link(v, path, other);
                _sentPaths.Add((v, other));
                Streamed();
            }
        }
    }

    private bool SameInode(int v, string path, HostStat st, Span<byte> stb)
    {
        int fd = HostDirectories.OpenAt2(_roots.RootFd(v), path, HostDirectories.O_PATH | HostDirectories.O_NOFOLLOW, 0, Confined);
        if (fd < 0) return false;
        try { return HostFiles.Stat(fd, stb) == 0 && HostStat.Parse(stb) is var o && o.Device == st.Device && o.Inode == st.Inode; }
        finally { HostFiles.Close(fd); }
    }

    private int OpenDirectory(int v, string path, int flags) =>
        HostDirectories.OpenAt2(_roots.RootFd(v), path.Length == 0 ? "." : path, flags | HostDirectories.O_DIRECTORY | HostDirectories.O_NOFOLLOW, 0, Confined);
}
