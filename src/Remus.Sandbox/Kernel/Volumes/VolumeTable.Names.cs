using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel.Volumes;

/// <summary>
/// Lookups inside a volume: every one is an openat2 on the volume's root with RESOLVE_IN_ROOT (".." stops at the
/// root, absolute symlinks start from it: a chroot), and what it found is named by its canonical path relative to
/// the root, read back from the host (/proc/self/fd). .remus-orphans at the root is the VMM's: never found.
/// </summary>
internal sealed partial class VolumeTable
{
    private const ulong Resolve = HostDirectories.ResolveInRoot | HostDirectories.ResolveNoMagicLinks;
    internal const long ENOTEMPTY = 39, EXDEV = 18;
    private const int NameMax = 255;

    /// <summary>Whether a canonical path is .remus-orphans or inside it.</summary>
    public static bool IsHidden(string canonical) =>
        canonical.StartsWith(OrphansName, StringComparison.Ordinal)
        && (canonical.Length == OrphansName.Length || canonical[OrphansName.Length] == '/');

    /// <summary>The host path of an fd (/proc/self/fd), or null.</summary>
    private static string? FdPath(int fd)
    {
        Span<byte> buf = stackalloc byte[4200];
        long n = HostDirectories.ReadLinkAt(HostDirectories.AtFdCwd, $"/proc/self/fd/{fd}", buf);
        return n <= 0 || n >= buf.Length ? null : Encoding.UTF8.GetString(buf[..(int)n]);
    }

    /// <summary>The canonical path (relative to the root of <paramref name="volume"/>) of a host fd opened in it.</summary>
    public string Canonical(int volume, int fd)
    {
        string root = FdPath(_volumes[volume].RootFd) ?? throw new SandboxException($"volume {HostDir(volume)}: its root is gone");
        string path = FdPath(fd) ?? throw new SandboxException($"volume {HostDir(volume)}: cannot name an open file");
        if (path == root) return "";
        if (root == "/") return path[1..];
        if (path.StartsWith(root, StringComparison.Ordinal) && path.Length > root.Length && path[root.Length] == '/')
            return path[(root.Length + 1)..];
        throw new SandboxException($"volume {HostDir(volume)}: a lookup left the volume ({path})");
    }

    /// <summary>
    /// openat2 of <paramref name="relative"/> inside the volume (host open flags; O_CLOEXEC is added). An fd and its
    /// canonical path, or a negated errno (ENOENT for anything in .remus-orphans).
    /// </summary>
    public int OpenPath(int volume, string relative, int flags, int mode, out string canonical)
    {
        canonical = "";
        if (LongComponent(relative)) return (int)-Errno.ENAMETOOLONG;
        int fd = HostDirectories.OpenAt2(_volumes[volume].RootFd, relative.Length == 0 ? "." : relative, flags, mode, Resolve);
        if (fd < 0) return fd;
        canonical = Canonical(volume, fd);
        if (IsHidden(canonical))
        {
            HostFiles.Close(fd);
            return (int)-Errno.ENOENT;
        }
        return fd;
    }

    private static bool LongComponent(string relative)
    {
        foreach (var c in relative.Split('/'))
            if (c.Length > NameMax && Encoding.UTF8.GetByteCount(c) > NameMax) return true;
        return false;
    }

    /// <summary>
    /// The directory a path's last component is in, opened (O_PATH) inside the volume, and that component: what the
    /// calls that make, remove or rename a name work on. <see cref="Name"/> is "" for the root itself, or "." / "..".
    /// </summary>
    internal readonly struct Parent(int fd, string dir, string name, bool trailingSlash) : IDisposable
    {
        public int Fd { get; } = fd;

        /// <summary>The directory's canonical path.</summary>
        public string Dir { get; } = dir;
        public string Name { get; } = name;

        /// <summary>The path ended in "/" (the name must be a directory).</summary>
        public bool TrailingSlash { get; } = trailingSlash;

        /// <summary>"", "." or "..": not a name a call can make or remove.</summary>
        public bool Special => Name is "" or "." or "..";

        /// <summary>The name is .remus-orphans at the root.</summary>
        public bool Hidden => Dir.Length == 0 && Name == OrphansName;

        public string Canonical => Dir.Length == 0 ? Name : Dir + "/" + Name;

        public void Dispose() => HostFiles.Close(Fd);
    }

    public long OpenParent(int volume, string relative, out Parent parent)
    {
        parent = default;
        bool trailing = relative.EndsWith('/');
        string rel = relative.TrimEnd('/');
        int slash = rel.LastIndexOf('/');
        string dir = slash < 0 ? "" : rel[..slash];
        string name = slash < 0 ? rel : rel[(slash + 1)..];
        if (Encoding.UTF8.GetByteCount(name) > NameMax) return -Errno.ENAMETOOLONG;
        int fd = OpenPath(volume, dir, HostDirectories.O_PATH | HostDirectories.O_DIRECTORY, 0, out string canonical);
        if (fd < 0) return fd;
        parent = new Parent(fd, canonical, name, trailing);
        return 0;
    }

    /// <summary>fstatat of the parent's name without following a symlink (Linux x86-64 struct stat).</summary>
    public static long StatName(in Parent p, Span<byte> st) =>
        HostDirectories.StatAt(p.Fd, p.Name.Length == 0 ? "." : p.Name, HostDirectories.AtSymlinkNoFollow, st);

    public static uint StatMode(ReadOnlySpan<byte> st) => BinaryPrimitives.ReadUInt32LittleEndian(st[24..]);
    public static bool StatIsDir(ReadOnlySpan<byte> st) => (StatMode(st) & 0xF000) == 0x4000;
    public static ulong StatInode(ReadOnlySpan<byte> st) => BinaryPrimitives.ReadUInt64LittleEndian(st[8..]);

    /// <summary>A struct stat timespec at <paramref name="at"/> (72 atime, 88 mtime) in ns.</summary>
    public static long StatTimeNs(ReadOnlySpan<byte> st, int at) =>
        BinaryPrimitives.ReadInt64LittleEndian(st[at..]) * 1_000_000_000 + BinaryPrimitives.ReadInt64LittleEndian(st[(at + 8)..]);

    /// <summary>Removes the entries called <paramref name="name"/> from a getdents64 buffer; the bytes kept.</summary>
    public static int DropEntry(Span<byte> buffer, string name)
    {
        byte[] target = Encoding.UTF8.GetBytes(name);
        int read = 0, write = 0;
        while (read + 19 <= buffer.Length)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(buffer[(read + 16)..]);
            if (len == 0 || read + len > buffer.Length) break;
            var entryName = buffer.Slice(read + 19, len - 19);
            int z = entryName.IndexOf((byte)0);
            if (z >= 0) entryName = entryName[..z];
            if (!entryName.SequenceEqual(target))
            {
                if (write != read) buffer.Slice(read, len).CopyTo(buffer[write..]);
                write += len;
            }
            read += len;
        }
        return write;
    }

    /// <summary>Whether a description of volume <paramref name="volume"/> is open at <paramref name="canonical"/>.</summary>
    public bool IsOpen(int volume, string canonical)
    {
        foreach (var f in _volumes[volume].Open) if (f.Path == canonical) return true;
        return false;
    }

    /// <summary>After a rename: every open file at <paramref name="from"/> or below it is now at <paramref name="to"/>.</summary>
    private void Retarget(int volume, string from, string to, List<VolumeFile>? only = null)
    {
        foreach (var f in only ?? _volumes[volume].Open)
        {
            if (f.Path == from) f.Path = to;
            else if (from.Length == 0 || f.Path.StartsWith(from + "/", StringComparison.Ordinal)) f.Path = to + f.Path[from.Length..];
        }
    }

    /// <summary>The open files at or below a path (before a rename exchange moves both sides).</summary>
    private List<VolumeFile> OpenAtOrBelow(int volume, string path)
    {
        var list = new List<VolumeFile>();
        foreach (var f in _volumes[volume].Open)
            if (f.Path == path || f.Path.StartsWith(path + "/", StringComparison.Ordinal)) list.Add(f);
        return list;
    }
}
