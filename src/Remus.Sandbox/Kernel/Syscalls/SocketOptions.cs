using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// setsockopt, getsockopt. The options every socket answers the same way are here (SO_TYPE, SO_DOMAIN, SO_PROTOCOL,
/// SO_ACCEPTCONN, SO_ERROR, and SO_RCVTIMEO/SO_SNDTIMEO, which the waits of Socket*.cs use); the rest go to the
/// socket (AF_UNIX: Files/UnixSocketFile.cs; AF_INET: the stack's sockets).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int SO_TYPE = 3, SO_ERROR = 4, SO_RCVTIMEO_OLD = 20, SO_SNDTIMEO_OLD = 21, SO_ACCEPTCONN = 30,
        SO_PROTOCOL = 38, SO_DOMAIN = 39, SO_RCVTIMEO_NEW = 66, SO_SNDTIMEO_NEW = 67;

    private long SysSetSockOpt(int fd, int level, int name, ulong value, ulong length)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        if ((long)length < 0 || length > 1024) return -Errno.EINVAL;
        var v = new byte[(int)length];
        if (length > 0) Memory.Read(value, v);
        if (level == SocketFile.SOL_SOCKET)
        {
            switch (name)
            {
                case SO_RCVTIMEO_OLD or SO_RCVTIMEO_NEW or SO_SNDTIMEO_OLD or SO_SNDTIMEO_NEW:
                {
                    // struct timeval (16 bytes on x86-64, old and new alike): sock_set_timeout.
                    if (v.Length < 16) return -Errno.EINVAL;
                    long sec = BinaryPrimitives.ReadInt64LittleEndian(v), usec = BinaryPrimitives.ReadInt64LittleEndian(v.AsSpan(8));
                    if (usec is < 0 or >= 1_000_000) return -Errno.EDOM;
                    long ns = sec < 0 ? 0 : sec >= long.MaxValue / NsPerSec - 1 ? 0 : sec * NsPerSec + usec * 1000;
                    if (name is SO_RCVTIMEO_OLD or SO_RCVTIMEO_NEW) s.ReceiveTimeoutNs = ns;
                    else s.SendTimeoutNs = ns;
                    return 0;
                }
                case SO_TYPE or SO_ERROR or SO_ACCEPTCONN or SO_PROTOCOL or SO_DOMAIN:
                    return -Errno.ENOPROTOOPT;
            }
        }
        return s.SetOption(level, name, v);
    }

    private long SysGetSockOpt(int fd, int level, int name, ulong value, ulong lengthAddr)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        int room = (int)Memory.ReadU32(lengthAddr);
        if (room < 0) return -Errno.EINVAL;
        Span<byte> v = stackalloc byte[256];
        v = v[..Math.Min(room, v.Length)];
        long n;
        if (level == SocketFile.SOL_SOCKET && name is SO_TYPE or SO_ERROR or SO_ACCEPTCONN or SO_PROTOCOL or SO_DOMAIN
            or SO_RCVTIMEO_OLD or SO_RCVTIMEO_NEW or SO_SNDTIMEO_OLD or SO_SNDTIMEO_NEW)
        {
            switch (name)
            {
                case SO_TYPE: n = SocketFile.PutInt(v, s.SocketType); break;
                case SO_ERROR: n = SocketFile.PutInt(v, s.TakeError()); break;
                case SO_ACCEPTCONN: n = SocketFile.PutInt(v, s.IsListening ? 1 : 0); break;
                case SO_PROTOCOL: n = SocketFile.PutInt(v, s.Protocol); break;
                case SO_DOMAIN: n = SocketFile.PutInt(v, s.Family); break;
                default:
                {
                    long ns = name is SO_RCVTIMEO_OLD or SO_RCVTIMEO_NEW ? s.ReceiveTimeoutNs : s.SendTimeoutNs;
                    Span<byte> tv = stackalloc byte[16];
                    BinaryPrimitives.WriteInt64LittleEndian(tv, ns / NsPerSec);
                    BinaryPrimitives.WriteInt64LittleEndian(tv[8..], ns % NsPerSec / 1000);
                    n = Math.Min(16, v.Length);
                    tv[..(int)n].CopyTo(v);
                    break;
                }
            }
        }
        else n = s.GetOption(level, name, v);
        if (n < 0) return n;
        if (n > 0) Memory.Write(value, v[..(int)n]);
        Memory.WriteU32(lengthAddr, (uint)n);
        return 0;
    }
}
