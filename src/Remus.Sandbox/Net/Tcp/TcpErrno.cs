namespace Remus.Sandbox.Net.Tcp;

/// <summary>The Linux errno values TCP returns (negated) beyond those in Kernel/Errno.</summary>
internal static class TcpErrno
{
    public const long EPIPE = 32, EAGAIN = 11, EINVAL = 22, EOPNOTSUPP = 95, ENOPROTOOPT = 92, ENOBUFS = 105,
        EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, EISCONN = 106,
        ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115,
        EMSGSIZE = 90, EAFNOSUPPORT = 97, EFAULT = 14;
}
