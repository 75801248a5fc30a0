using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The host calls the toolstack needs (run-directory locks, daemonizing, terminals, polling fds), kept here in
/// the sandbox's lowest layer so that P/Invoke lives only in Remus.Kvm and Remus.Sandbox/Platform.
/// </summary>
public static partial class HostOs
{
    private const string Lib = "libc";

    public const int LOCK_EX = 2;
    public const int LOCK_UN = 8;
    public const int LOCK_NB = 4;
    public const int EWOULDBLOCK = 11;
    public const short POLLIN = 0x1;
    public const short POLLHUP = 0x10;
    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int TCSANOW = 0;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int setsid();

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int dup2(int oldfd, int newfd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int isatty(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int poll([In, Out] PollFd[] fds, nuint nfds, int timeout);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint read(int fd, ref byte buf, nint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(int fd, ref byte buf, nint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;
    public const int O_CLOEXEC = 0x80000;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport(Lib)]
    public static partial uint geteuid();

    /// <summary>struct termios is 60 bytes on x86-64 glibc; we only touch c_lflag and c_cc.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    public static partial int tcgetattr(int fd, [Out] byte[] termios);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int tcsetattr(int fd, int optionalActions, [In] byte[] termios);

    public static int LastError => Marshal.GetLastPInvokeError();

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Whether a process with this pid exists (kill(pid, 0); EPERM still means it exists).</summary>
    public static bool ProcessExists(int pid) => pid > 0 && (kill(pid, 0) == 0 || LastError == 1);
}
