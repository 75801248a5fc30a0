namespace Remus.Sandbox.Kernel;

/// <summary>Names of x86-64 Linux system calls, for the "unsupported syscall" log line.</summary>
internal static class SyscallNames
{
    private static readonly Dictionary<long, string> Names = new()
    {
        [7] = "poll", [18] = "pwrite64", [22] = "pipe", [23] = "select", [26] = "msync", [27] = "mincore",
        [29] = "shmget", [30] = "shmat", [31] = "shmctl", [34] = "pause", [36] = "getitimer", [37] = "alarm",
        [38] = "setitimer", [40] = "sendfile", [41] = "socket", [42] = "connect", [43] = "accept", [44] = "sendto",
        [45] = "recvfrom", [46] = "sendmsg", [47] = "recvmsg", [48] = "shutdown", [49] = "bind", [50] = "listen",
        [51] = "getsockname", [52] = "getpeername", [53] = "socketpair", [54] = "setsockopt", [55] = "getsockopt",
        [56] = "clone", [57] = "fork", [58] = "vfork", [59] = "execve", [61] = "wait4", [73] = "flock",
        [74] = "fsync", [75] = "fdatasync", [76] = "truncate", [77] = "ftruncate", [78] = "getdents", [80] = "chdir",
        [81] = "fchdir", [82] = "rename", [83] = "mkdir", [84] = "rmdir", [85] = "creat", [86] = "link",
        [87] = "unlink", [88] = "symlink", [90] = "chmod", [91] = "fchmod", [92] = "chown", [98] = "getrusage",
        [100] = "times", [101] = "ptrace", [105] = "setuid", [106] = "setgid", [109] = "setpgid", [112] = "setsid",
        [135] = "personality", [137] = "statfs", [138] = "fstatfs", [149] = "mlock", [157] = "prctl",
        [202] = "futex", [213] = "epoll_create", [232] = "epoll_wait", [233] = "epoll_ctl", [253] = "inotify_add_watch",
        [270] = "pselect6", [271] = "ppoll", [281] = "epoll_pwait", [283] = "timerfd_create", [284] = "eventfd",
        [290] = "eventfd2", [291] = "epoll_create1", [293] = "pipe2", [309] = "getcpu", [319] = "memfd_create",
        [322] = "execveat", [332] = "statx", [334] = "rseq", [435] = "clone3", [436] = "close_range",
        [439] = "faccessat2",
    };

    public static string Of(long nr) => Names.TryGetValue(nr, out var n) ? n : $"syscall {nr}";
}
