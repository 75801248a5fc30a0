using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>The libc calls the sandbox's lowest layer needs. Nothing above Platform/ calls these.</summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial long ptrace(long request, int pid, nint addr, nint data);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int kill(int pid, int sig);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int memfd_create([MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint flags);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int ftruncate(int fd, long length);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int munmap(nint addr, nuint length);


    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int write(int fd, byte* buf, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint pwrite(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_spawn(int* pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint fileActions, nint attr, nint* argv, nint* envp);



    [LibraryImport(Lib, SetLastError = true)]
    internal static partial long syscall(long number, long a0, long a1, long a2);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int ioctl(int fd, ulong request, void* arg);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    internal const long SYS_pidfd_open = 434, SYS_pidfd_getfd = 438, SYS_userfaultfd = 323;

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int clock_gettime(int clock, long* timespec);

    internal const int CLOCK_THREAD_CPUTIME_ID = 3;

    /// <summary>The CPU-time clock of process <paramref name="pid"/> (the kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)).</summary>
    internal static int ProcessCpuClock(int pid) => (~pid << 3) | 2;

    /// <summary>Reads <paramref name="clock"/> in nanoseconds; -errno on failure.</summary>
    internal static long ClockNs(int clock)
    {
        long* ts = stackalloc long[2];
        return clock_gettime(clock, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : -Errno;
    }

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial long lseek(int fd, long offset, int whence);

    internal const int SEEK_DATA = 3, SEEK_HOLE = 4;

    internal static int Errno => Marshal.GetLastPInvokeError();

    internal static string ErrnoText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    // ptrace requests (linux/ptrace.h)
    internal const long PTRACE_GETREGS = 12;
    internal const long PTRACE_SETREGS = 13;
    internal const long PTRACE_SYSCALL = 24;
    internal const long PTRACE_SYSEMU = 31;
    internal const long PTRACE_GETREGSET = 0x4204;
    internal const long PTRACE_SETREGSET = 0x4205;
    internal const long PTRACE_SEIZE = 0x4206;
    internal const long PTRACE_INTERRUPT = 0x4207;
    internal const long PTRACE_GETSIGINFO = 0x4202;
    internal const long PTRACE_GET_SYSCALL_INFO = 0x420e;
    internal const long PTRACE_O_TRACESYSGOOD = 1;
    internal const long PTRACE_O_EXITKILL = 0x100000;
    internal const int PTRACE_EVENT_STOP = 128;
    internal const int NT_X86_XSTATE = 0x202;

    internal const int WALL = 0x40000000;

    internal const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    internal const int MAP_SHARED = 1, MAP_FIXED = 0x10;
    internal const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
    internal const uint MFD_CLOEXEC = 1;

    internal const int SIGKILL = 9, SIGUSR2 = 12, SIGTRAP = 5, SIGSTOP = 19;
}
