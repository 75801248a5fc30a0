using System.Runtime.InteropServices;

namespace Remus.Kvm.Native;

/// <summary>
/// The few libc entry points Remus.Kvm needs, as source-generated P/Invokes. Every call that can fail sets errno,
/// read back with <see cref="Marshal.GetLastPInvokeError"/> (see <see cref="Errno"/>).
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    // <fcntl.h>
    public const int O_RDWR = 0x2;
    public const int O_CLOEXEC = 0x80000;

    // <sys/mman.h>
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public static readonly nint MAP_FAILED = -1;

    // <signal.h>
    public const int SIG_BLOCK = 0;
    public const int SIG_UNBLOCK = 1;
    public const int SIG_SETMASK = 2;

    // <errno.h>
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    /// <summary>ioctl with an integer argument (passed by value, e.g. KVM_CHECK_EXTENSION, KVM_SET_TSS_ADDR).</summary>
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl(int fd, ulong request, nuint arg);

    /// <summary>ioctl with a pointer argument.</summary>
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl(int fd, ulong request, void* arg);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    /// <summary>The calling thread's pthread_t (an unsigned long in glibc).</summary>
    [LibraryImport(Lib)]
    public static partial nuint pthread_self();

    /// <summary>Returns 0 or an error number (does not set errno).</summary>
    [LibraryImport(Lib)]
    public static partial int pthread_kill(nuint thread, int sig);

    /// <summary>Returns 0 or an error number (does not set errno).</summary>
    [LibraryImport(Lib)]
    public static partial int pthread_sigmask(int how, SigSet* set, SigSet* oldset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sigtimedwait(SigSet* set, void* info, Timespec* timeout);

    /// <summary>glibc's SIGRTMIN (34 with NPTL; the kernel's first two real-time signals are glibc's own).</summary>
    [LibraryImport(Lib)]
    public static partial int __libc_current_sigrtmin();

    [LibraryImport(Lib)]
    public static partial int __libc_current_sigrtmax();

    /// <summary>errno of the last P/Invoke on this thread that was declared with SetLastError.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>"No such file or directory (ENOENT)".</summary>
    public static string ErrnoText(int errno)
    {
        string text = Marshal.GetPInvokeErrorMessage(errno);
        string? name = ErrnoName(errno);
        return name is null ? text : $"{text} ({name})";
    }

    public static string? ErrnoName(int errno) => errno switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENOTTY => "ENOTTY",
        ENOSPC => "ENOSPC",
        EROFS => "EROFS",
        ENOSYS => "ENOSYS",
        EOPNOTSUPP => "EOPNOTSUPP",
        _ => null,
    };
}

/// <summary>glibc's userspace <c>sigset_t</c>: 1024 bits. Signal n is bit n-1.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SigSet
{
    public const int Size = 128;
    public fixed ulong Bits[16];

    public static SigSet Of(int signal)
    {
        SigSet s = default;
        s.Add(signal);
        return s;
    }

    public void Add(int signal) => Bits[(signal - 1) / 64] |= 1UL << ((signal - 1) % 64);

    public void Remove(int signal) => Bits[(signal - 1) / 64] &= ~(1UL << ((signal - 1) % 64));

    public readonly bool Contains(int signal) => (Bits[(signal - 1) / 64] & (1UL << ((signal - 1) % 64))) != 0;

    /// <summary>The kernel's own sigset_t on x86-64 is the first 64 bits (signals 1..64).</summary>
    public readonly ulong KernelMask => Bits[0];
}

/// <summary><c>struct timespec</c> on x86-64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    public long Seconds;
    public long Nanoseconds;
}
