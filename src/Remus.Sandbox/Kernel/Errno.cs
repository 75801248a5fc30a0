namespace Remus.Sandbox.Kernel;

/// <summary>Linux errno values the kernel layer returns (negated, in rax).</summary>
internal static class Errno
{
    public const long EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ECHILD = 10, EAGAIN = 11,
        ENOMEM = 12, EACCES = 13, EFAULT = 14, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EMFILE = 24,
        ENOTTY = 25, ESPIPE = 29, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36, ENOSYS = 38, ELOOP = 40,
        ETIMEDOUT = 110, ENODEV = 19, EOVERFLOW = 75, EOPNOTSUPP = 95, EBUSY = 16, EPIPE = 32, ENOSPC = 28;

    // Sockets (include/uapi/asm-generic/errno.h).
    public const long ENOTSOCK = 88, EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91, ENOPROTOOPT = 92,
        EPROTONOSUPPORT = 93, ESOCKTNOSUPPORT = 94, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99,
        ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOBUFS = 105, EISCONN = 106, ENOTCONN = 107,
        ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115, EDOM = 33;
}
