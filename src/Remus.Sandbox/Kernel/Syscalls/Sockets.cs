using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// socket, socketpair, bind, listen, accept, accept4, connect, shutdown, getsockname, getpeername (net/socket.c).
/// AF_UNIX sockets live in the kernel (Files/UnixSocket*.cs, names in <see cref="UnixNames"/>); AF_INET ones in the
/// domain's stack (<see cref="Net"/>). AF_INET6 is EAFNOSUPPORT (logged once: Go and others fall back to IPv4).
/// A blocking accept waits for a connection; a blocking TCP connect waits for the handshake and returns its error.
/// A connect interrupted by a pause or checkpoint restarts into the same wait (never a second SYN).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000, SOCK_TYPE_MASK = 0xF;

    /// <summary>The progress a blocking connect leaves for its restart: it is already under way.</summary>
    private const long ConnectUnderWay = 1;

    private bool _loggedInet6;

    /// <summary>The domain's AF_UNIX names (paths and abstract), in the checkpoint.</summary>
    internal UnixNamespace UnixNames { get; private set; } = new();

    /// <summary>SO_PEERCRED of the program's sockets: pid, uid and gid as getpid/getuid/getgid report them.</summary>
    private static (int, int, int) Credentials => (Pid, 0, 0);

    private SocketFile? SocketOf(int fd, out long error)
    {
        var f = Fds.Get(fd);
        error = f == null ? -Errno.EBADF : f is SocketFile ? 0 : -Errno.ENOTSOCK;
        return f as SocketFile;
    }

    private long SysSocket(int domain, int type, int protocol)
    {
        int flags = type & ~SOCK_TYPE_MASK;
        type &= SOCK_TYPE_MASK;
        if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return -Errno.EINVAL;
        long r = NewSocket(domain, type, protocol, flags & SOCK_NONBLOCK, out var f);
        if (r < 0) return r;
        r = Fds.Add(f!, (flags & SOCK_CLOEXEC) != 0);
        if (r < 0) f!.Close();
        return r;
    }

    private long NewSocket(int domain, int type, int protocol, int fileFlags, out SocketFile? f)
    {
        f = null;
        switch (domain)
        {
            case SocketFile.AF_UNIX:
                if (type is not (SocketFile.SOCK_STREAM or SocketFile.SOCK_DGRAM or SocketFile.SOCK_SEQPACKET)) return -Errno.ESOCKTNOSUPPORT;
                if (protocol != 0 && protocol != SocketFile.AF_UNIX) return -Errno.EPROTONOSUPPORT;
                f = new UnixSocketFile(new UnixSocket(type, UnixNames), fileFlags, Credentials);
                return 0;
            case SocketFile.AF_INET:
            {
                long r = Net.CreateSocket(type, protocol, out var s);
                if (r < 0) return r;
                f = new InetSocketFile(s!, fileFlags, Spec.Network == null ? Net : null);
                return 0;
            }
            case SocketFile.AF_INET6:
                if (!_loggedInet6)
                {
                    _loggedInet6 = true;
                    Log?.Invoke("socket(AF_INET6): IPv6 not supported, returning EAFNOSUPPORT");
                }
                return -Errno.EAFNOSUPPORT;
            default:
                return -Errno.EAFNOSUPPORT;
        }
    }

    private long SysSocketPair(int domain, int type, int protocol, ulong sv)
    {
        int flags = type & ~SOCK_TYPE_MASK;
        type &= SOCK_TYPE_MASK;
        if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return -Errno.EINVAL;
        if (domain == SocketFile.AF_INET) return -Errno.EOPNOTSUPP;
        if (domain == SocketFile.AF_INET6) return NewSocket(domain, type, protocol, 0, out _);
        if (domain != SocketFile.AF_UNIX) return -Errno.EAFNOSUPPORT;
        if (type is not (SocketFile.SOCK_STREAM or SocketFile.SOCK_DGRAM or SocketFile.SOCK_SEQPACKET)) return -Errno.ESOCKTNOSUPPORT;
        if (protocol != 0 && protocol != SocketFile.AF_UNIX) return -Errno.EPROTONOSUPPORT;
        var (sa, sb) = UnixSocket.Pair(type, UnixNames, Credentials);
        var a = new UnixSocketFile(sa, flags & SOCK_NONBLOCK, Credentials);
        var b = new UnixSocketFile(sb, flags & SOCK_NONBLOCK, Credentials);
        bool cloexec = (flags & SOCK_CLOEXEC) != 0;
        long fa = Fds.Add(a, cloexec);
        if (fa < 0)
        {
            a.Close();
            b.Close();
            return fa;
        }
        long fb = Fds.Add(b, cloexec);
        if (fb < 0)
        {
            Fds.Close((int)fa);
            b.Close();
            return fb;
        }
        try
        {
            Memory.WriteU32(sv, (uint)fa);
            Memory.WriteU32(sv + 4, (uint)fb);
        }
        catch (Platform.GuestFaultException)
        {
            Fds.Close((int)fa);
            Fds.Close((int)fb);
            throw;
        }
        return 0;
    }

    private long SysBind(int fd, ulong addr, ulong length)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        var a = ReadSockaddr(addr, length, out e);
        return a == null ? e : s.Bind(a);
    }

    private long SysListen(int fd, int backlog)
    {
        var s = SocketOf(fd, out long e);
        return s == null ? e : s.Listen(backlog);
    }

    private long SysAccept(int fd, ulong addr, ulong lengthAddr, int flags)
    {
        if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return -Errno.EINVAL;
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        SocketFile? accepted = null;
        long r = WaitOnSocket(s, PollEvents.Readable, s.NonBlocking, s.ReceiveTimeoutNs,
            () => s.Accept(flags & SOCK_NONBLOCK, out accepted));
        if (r < 0) return r;
        if (addr != 0)
        {
            Span<byte> name = stackalloc byte[MaxSockaddr];
            long n = accepted!.PeerName(name);
            try
            {
                if (n >= 0) WriteSockaddr(addr, lengthAddr, name, (int)n);
                else WriteSockaddr(addr, lengthAddr, name, accepted.Family == SocketFile.AF_UNIX ? UnixSocketFile.SunPathOffset : 0);
            }
            catch (Platform.GuestFaultException)
            {
                // Linux drops the connection it had taken when the address cannot be written.
                accepted.Close();
                throw;
            }
        }
        r = Fds.Add(accepted!, (flags & SOCK_CLOEXEC) != 0);
        if (r < 0) accepted!.Close();
        return r;
    }

    private long SysConnect(int fd, ulong addr, ulong length)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        long r;
        if (_restartedDone == ConnectUnderWay) r = -Errno.EINPROGRESS; // our own restart: the SYN went before
        else
        {
            var a = ReadSockaddr(addr, length, out e);
            if (a == null) return e;
            r = s.Connect(a);
            // unix_stream_connect: a blocking connect to a listener whose accept queue is full waits for room.
            if (r == -Errno.EAGAIN && !s.NonBlocking && s is UnixSocketFile u && u.Socket.FullListener is { } full)
                r = WaitOnSocket(full.Queue, PollEvents.Writable, false, s.SendTimeoutNs, () => s.Connect(a), () => long.MaxValue);
        }
        // inet_stream_connect: a blocking connect waits for the handshake, also when one was already under way.
        if ((r != -Errno.EINPROGRESS && r != -Errno.EALREADY) || s.NonBlocking) return r;
        const PollEvents done = PollEvents.Out | PollEvents.Err | PollEvents.Hup;
        r = WaitOnSocket(s, done, false, s.SendTimeoutNs, () => (s.Readiness() & done) != 0 ? 0 : -Errno.EAGAIN,
            restartProgress: ConnectUnderWay);
        if (r == -Errno.EAGAIN) return -Errno.EINPROGRESS; // SO_SNDTIMEO ran out
        if (r < 0) return r;
        if (s is InetSocketFile inet) inet.Connecting = false;
        int err = s.TakeError();
        return err != 0 ? -err : 0;
    }

    private long SysShutdown(int fd, int how)
    {
        var s = SocketOf(fd, out long e);
        return s == null ? e : s.Shutdown(how);
    }

    private long SysGetSockName(int fd, ulong addr, ulong lengthAddr, bool peer)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        Span<byte> name = stackalloc byte[MaxSockaddr];
        long n = peer ? s.PeerName(name) : s.LocalName(name);
        if (n < 0) return n;
        return WriteSockaddr(addr, lengthAddr, name, (int)n);
    }

    /// <summary>
    /// Calls <paramref name="attempt"/> until it is not -EAGAIN, waiting on the socket's queue for
    /// <paramref name="events"/> in between unless <paramref name="nonBlocking"/>; -EAGAIN when
    /// <paramref name="timeoutNs"/> (SO_RCVTIMEO/SO_SNDTIMEO, 0: none) runs out. A signal interrupts (ERESTARTSYS, EINTR
    /// with a timeout, as sock_intr_errno); a pause or checkpoint restarts the call (with its deadline, and with
    /// <paramref name="restartProgress"/> for the restart to find in _restartedDone when non-zero).
    /// </summary>
    private long WaitOnSocket(SocketFile s, PollEvents events, bool nonBlocking, long timeoutNs, Func<long> attempt, long restartProgress = 0) =>
        WaitOnSocket(s.Queue!, events, nonBlocking, timeoutNs, attempt, () => s.NextEventNs, restartProgress);

    private long WaitOnSocket(WaitQueue queue, PollEvents events, bool nonBlocking, long timeoutNs, Func<long> attempt, Func<long> nextEvent,
        long restartProgress = 0)
    {
        long r = attempt();
        if (r != -Errno.EAGAIN || nonBlocking) return r;
        long deadline = _restartedDeadline ?? (timeoutNs > 0 ? MonotonicDeadline(timeoutNs) : long.MaxValue);
        using var w = new Waiter();
        w.Listen(queue, events);
        while (true)
        {
            w.Arm();
            r = attempt();
            if (r != -Errno.EAGAIN) return r;
            if (Clock.MonotonicNs >= deadline) return -Errno.EAGAIN;
            if (!SleepOn(w, Math.Min(deadline, nextEvent()), deadline == long.MaxValue ? ERESTARTSYS : Errno.EINTR))
            {
                if (deadline != long.MaxValue) _interruptedWait = (_callRip, deadline);
                if (restartProgress != 0) _interruptedTransfer = (_callRip, restartProgress);
                throw new RestartException();
            }
        }
    }

    /// <summary>
    /// unlink/unlinkat: a path an AF_UNIX socket was bound to first (those names live in the domain's own namespace),
    /// then a volume's file (Paths.cs).
    /// </summary>
    private long SysUnlink(int dirfd, ulong pathAddr, int flags)
    {
        string path = Memory.ReadCString(pathAddr);
        if ((flags & ~0x200) == 0 && (path.StartsWith('/') || dirfd == AtFdCwd) && UnixNames.Unlink(path)) return 0;
        return UnlinkPath(dirfd, path, flags);
    }
}
