using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>
/// Read-only access to the host files a domain was given, on the guest's behalf (like gVisor's gofer): plain
/// host system calls on host file descriptors, so stat data and directory order are exactly the host's.
/// Every method returns a result or a negated errno, the kernel layer's convention.
/// </summary>
public static unsafe partial class HostFiles
{
    private const int O_RDONLY = 0, O_CLOEXEC = 0x80000, O_NOFOLLOW = 0x20000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int open_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);
    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint read_(int fd, byte* buf, nuint count);
    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint pread_(int fd, byte* buf, nuint count, long offset);
    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long lseek_(int fd, long offset, int whence);
    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int fstat_(int fd, byte* buf);
    [LibraryImport("libc", EntryPoint = "fstatat", SetLastError = true)]
    private static partial int fstatat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf, int flags);
    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    private static partial nint getdents64_(int fd, byte* buf, nuint count);
    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true)]
    private static partial nint readlink_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf, nuint size);
    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static partial nint realpath_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint resolved);
    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void free_(nint p);
    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int close_(int fd);

    /// <summary>Size of Linux x86-64 <c>struct stat</c>.</summary>
    public const int StatSize = 144;

    private static long Err() => -Marshal.GetLastPInvokeError();

    public static int OpenRead(string path, bool noFollow)
    {
        int fd = open_(path, O_RDONLY | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0), 0);
        return fd >= 0 ? fd : (int)Err();
    }

    public static long Read(int fd, Span<byte> buf)
    {
        fixed (byte* p = buf) { nint n = read_(fd, p, (nuint)buf.Length); return n >= 0 ? n : Err(); }
    }

    public static long PRead(int fd, Span<byte> buf, long offset)
    {
        fixed (byte* p = buf) { nint n = pread_(fd, p, (nuint)buf.Length, offset); return n >= 0 ? n : Err(); }
    }

    public static long Seek(int fd, long offset, int whence)
    {
        long r = lseek_(fd, offset, whence);
        return r >= 0 ? r : Err();
    }

    public static long Stat(int fd, Span<byte> statbuf)
    {
        fixed (byte* p = statbuf) return fstat_(fd, p) == 0 ? 0 : Err();
    }

    public static long StatPath(string path, bool noFollow, Span<byte> statbuf)
    {
        fixed (byte* p = statbuf) return fstatat_(-100, path, p, noFollow ? 0x100 : 0) == 0 ? 0 : Err();
    }

    public static long GetDents64(int fd, Span<byte> buf)
    {
        fixed (byte* p = buf) { nint n = getdents64_(fd, p, (nuint)buf.Length); return n >= 0 ? n : Err(); }
    }

    public static long ReadLink(string path, Span<byte> buf)
    {
        fixed (byte* p = buf) { nint n = readlink_(path, p, (nuint)buf.Length); return n >= 0 ? n : Err(); }
    }

    /// <summary>The canonical path (symlinks resolved), or null when it does not resolve.</summary>
    public static string? RealPath(string path)
    {
        nint r = realpath_(path, 0);
        if (r == 0) return null;
        try { return Marshal.PtrToStringUTF8(r); }
        finally { free_(r); }
    }

    public static void Close(int fd) => close_(fd);
}
