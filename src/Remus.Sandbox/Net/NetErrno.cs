namespace Remus.Sandbox.Net;

/// <summary>The Linux errno values of the network stack (positive; results carry them negated).</summary>
internal static class NetErrno
{
    public const int EPERM = 1, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EINVAL = 22, EPIPE = 32,
        ENONET = 64, EPROTO = 71, ENOTSOCK = 88, EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91, ENOPROTOOPT = 92,
        EPROTONOSUPPORT = 93, ESOCKTNOSUPPORT = 94, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98,
        EADDRNOTAVAIL = 99, ENETDOWN = 100, ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOBUFS = 105,
        EISCONN = 106, ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTDOWN = 112, EHOSTUNREACH = 113,
        EALREADY = 114, EINPROGRESS = 115;
}
