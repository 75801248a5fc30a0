using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The host calls behind writable volumes (issue 10): everything relative to a directory fd, lookups confined to a
/// root by openat2(RESOLVE_IN_ROOT) as a chroot would confine them. Results are values or negated errnos (the kernel
/// layer's convention). Shared by the volume file system (Kernel/Volumes) and the replica's applier (Volumes/).
/// </summary>
public static unsafe partial class HostDirectories
{
    public const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtRemoveDir = 0x200, AtEmptyPath = 0x1000;
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200,
        O_APPEND = 0x400, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000;

    /// <summary>openat2 resolve flags (linux/openat2.h).</summary>
    public const ulong ResolveNoXdev = 0x01, ResolveNoMagicLinks = 0x02, ResolveNoSymlinks = 0x04, ResolveBeneath = 0x08,
        ResolveInRoot = 0x10;

    public const uint RenameNoReplace = 1, RenameExchange = 2;
    public const int LockSh = 1, LockEx = 2, LockNb = 4, LockUn = 8;

    /// <summary>Size of Linux x86-64 <c>struct statfs</c>.</summary>
    public const int StatfsSize = 120;

    private const long SysOpenat2 = 437;

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow { public ulong Flags, Mode, Resolve; }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall4_(long nr, long a0, long a1, long a2, long a3);
    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int openat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);
    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true)]
    private static partial int mkdirat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode);
    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int unlinkat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    private static partial int renameat2_(int olddirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldpath, int newdirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string newpath, uint flags);
    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static partial int linkat_(int olddirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldpath, int newdirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string newpath, int flags);
    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true)]
    private static partial int symlinkat_([MarshalAs(UnmanagedType.LPUTF8Str)] string target, int newdirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string linkpath);
    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint readlinkat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf, nuint size);
    [LibraryImport("libc", EntryPoint = "fchmodat", SetLastError = true)]
    private static partial int fchmodat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode, int flags);
    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    private static partial int fchmod_(int fd, int mode);
    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true)]
    private static partial int utimensat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, long* times, int flags);
    [LibraryImport("libc", EntryPoint = "futimens", SetLastError = true)]
    private static partial int futimens_(int fd, long* times);
    [LibraryImport("libc", EntryPoint = "fstatat", SetLastError = true)]
    private static partial int fstatat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf, int flags);
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint write_(int fd, byte* buf, nuint count);
    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint pwrite_(int fd, byte* buf, nuint count, long offset);
    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int ftruncate_(int fd, long length);
    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int fallocate_(int fd, int mode, long offset, long len);
    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int fsync_(int fd);
    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int fdatasync_(int fd);
    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int syncfs_(int fd);
    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int fstatfs_(int fd, byte* buf);
    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int flock_(int fd, int operation);

    private static long Err() => -Marshal.GetLastPInvokeError();
    private static long Check(int r) => r == 0 ? 0 : Err();

    /// <summary>
    /// openat2: opens <paramref name="path"/> relative to <paramref name="dirfd"/> with open flags and resolve flags
    /// (<see cref="ResolveInRoot"/> confines every "..", absolute symlink and absolute path to dirfd as a root).
    /// O_CLOEXEC is always added. An fd or a negated errno.
    /// </summary>
    public static int OpenAt2(int dirfd, string path, int flags, int mode, ulong resolve)
    {
        byte[] name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        var how = new OpenHow { Flags = (ulong)(uint)(flags | O_CLOEXEC), Mode = (flags & O_CREAT) != 0 || (flags & 0x410000) == 0x410000 ? (ulong)mode : 0, Resolve = resolve };
        fixed (byte* p = name)
        {
            long r = syscall4_(SysOpenat2, dirfd, (long)p, (long)&how, sizeof(OpenHow));
            return r >= 0 ? (int)r : (int)Err();
        }
    }

    /// <summary>openat (no confinement: use only with canonical paths, or on directories you opened yourself).</summary>
    public static int OpenAt(int dirfd, string path, int flags, int mode)
    {
        int fd = openat_(dirfd, path, flags | O_CLOEXEC, mode);
        return fd >= 0 ? fd : (int)Err();
    }

    public static long MkdirAt(int dirfd, string name, int mode) => Check(mkdirat_(dirfd, name, mode));
    public static long UnlinkAt(int dirfd, string name, int flags) => Check(unlinkat_(dirfd, name, flags));
    public static long RenameAt2(int olddirfd, string oldName, int newdirfd, string newName, uint flags) =>
        Check(renameat2_(olddirfd, oldName, newdirfd, newName, flags));
    public static long LinkAt(int olddirfd, string oldName, int newdirfd, string newName, int flags) =>
        Check(linkat_(olddirfd, oldName, newdirfd, newName, flags));
    public static long SymlinkAt(string target, int newdirfd, string name) => Check(symlinkat_(target, newdirfd, name));

    public static long ReadLinkAt(int dirfd, string path, Span<byte> buf)
    {
        fixed (byte* p = buf) { nint n = readlinkat_(dirfd, path, p, (nuint)buf.Length); return n >= 0 ? n : Err(); }
    }

    public static long ChmodAt(int dirfd, string name, int mode, int flags) => Check(fchmodat_(dirfd, name, mode, flags));
    public static long Fchmod(int fd, int mode) => Check(fchmod_(fd, mode));

    /// <summary>utimensat with (atime sec, nsec, mtime sec, nsec); UTIME_NOW/UTIME_OMIT in the nsec fields as Linux has them.</summary>
    public static long UtimensAt(int dirfd, string path, ReadOnlySpan<long> times, int flags)
    {
        if (times.Length != 4) throw new ArgumentException("four values", nameof(times));
        fixed (long* t = times) return Check(utimensat_(dirfd, path, t, flags));
    }

    public static long Futimens(int fd, ReadOnlySpan<long> times)
    {
        if (times.Length != 4) throw new ArgumentException("four values", nameof(times));
        fixed (long* t = times) return Check(futimens_(fd, t));
    }

    /// <summary>fstatat into a Linux x86-64 struct stat (<see cref="HostFiles.StatSize"/> bytes).</summary>
    public static long StatAt(int dirfd, string path, int flags, Span<byte> statbuf)
    {
        fixed (byte* p = statbuf) return Check(fstatat_(dirfd, path, p, flags));
    }

    public static long Write(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data) { nint n = write_(fd, p, (nuint)data.Length); return n >= 0 ? n : Err(); }
    }

    public static long PWrite(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data) { nint n = pwrite_(fd, p, (nuint)data.Length, offset); return n >= 0 ? n : Err(); }
    }

    public static long Truncate(int fd, long length) => Check(ftruncate_(fd, length));
    public static long Fallocate(int fd, int mode, long offset, long length) => Check(fallocate_(fd, mode, offset, length));
    public static long Fsync(int fd) => Check(fsync_(fd));
    public static long Fdatasync(int fd) => Check(fdatasync_(fd));
    public static long Syncfs(int fd) => Check(syncfs_(fd));

    public static long Fstatfs(int fd, Span<byte> buf)
    {
        fixed (byte* p = buf) return Check(fstatfs_(fd, p));
    }

    /// <summary>flock on the host (the volume root's "in use" lock between VMMs on one host).</summary>
    public static long Flock(int fd, int operation) => Check(flock_(fd, operation));
}
