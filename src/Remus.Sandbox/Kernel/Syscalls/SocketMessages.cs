using System.Buffers;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, and read/write/readv/writev on sockets. MSG_DONTWAIT,
/// MSG_PEEK, MSG_WAITALL (stream), MSG_TRUNC (datagram: the whole length; msg_flags reports a cut), MSG_NOSIGNAL (else
/// SIGPIPE on EPIPE, as pipes). A blocking stream send puts in all its bytes, waiting for room: a signal after some went
/// in returns the short count; a pause or checkpoint restarts the call with its progress kept (as a pipe write), and
/// likewise a MSG_WAITALL receive (the bytes already received are in the program's buffer). Control messages are not
/// passed (msg_controllen comes back 0).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int MSG_WAITFORONE = 0x10000, MSG_CTRUNC = 0x8;
    private const int MsghdrSize = 56, MmsghdrSize = 64;

    /// <summary>How many bytes one send or receive moves through the VMM at most (the rest: the next call).</summary>
    private const int MaxSocketTransfer = 1 << 20;

    private long SendOn(SocketFile s, in UserIoVec data, int flags, ReadOnlySpan<byte> to)
    {
        int n = (int)Math.Min(data.Total, s.IsStream ? 1 << 24 : int.MaxValue);
        if (!s.IsStream && n > 1 << 24) return -Errno.EMSGSIZE;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(n, 1));
        try
        {
            long got = GatherIoVec(data, 0, buffer.AsSpan(0, n));
            if (got < 0) return got;
            return SendWaiting(s, buffer.AsSpan(0, (int)got), flags, to);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The send of <paramref name="data"/> (already copied from the program), waiting for room unless non-blocking.</summary>
    private long SendWaiting(SocketFile s, ReadOnlySpan<byte> data, int flags, ReadOnlySpan<byte> to)
    {
        bool nonBlocking = s.NonBlocking || (flags & SocketFile.MSG_DONTWAIT) != 0;
        long done = s.IsStream ? Math.Min(_restartedDone, data.Length) : 0;
        long deadline = long.MaxValue;
        Waiter? w = null;
        try
        {
            while (true)
            {
                w?.Arm();
                long r = s.Send(data[(int)done..], flags, to);
                if (r == -Errno.EPIPE)
                {
                    if ((flags & SocketFile.MSG_NOSIGNAL) == 0) RaiseSignal(SIGPIPE);
                    return done > 0 ? done : r;
                }
                if (r < 0 && r != -Errno.EAGAIN) return done > 0 ? done : r;
                if (r >= 0)
                {
                    done += r;
                    if (done == data.Length || !s.IsStream) return done; // a datagram goes whole or not at all
                }
                if (nonBlocking) return done > 0 ? done : -Errno.EAGAIN;
                if (w == null)
                {
                    w = new Waiter();
                    w.Listen(s.Queue!, PollEvents.Writable);
                    deadline = _restartedDeadline ?? (s.SendTimeoutNs > 0 ? MonotonicDeadline(s.SendTimeoutNs) : long.MaxValue);
                    continue; // look once more now that we listen
                }
                if (WaitOnSocket(w, s, deadline, done) is { } result) return result;
            }
        }
        finally
        {
            w?.Dispose();
        }
    }

    /// <summary>
    /// One sleep of a blocked send or receive on <paramref name="s"/> having moved <paramref name="done"/> bytes: null to
    /// look again; a result when the call ends (SO_SNDTIMEO/SO_RCVTIMEO expired: EAGAIN or the partial count; a signal
    /// after some progress: the partial count). A pause or checkpoint throws RestartException after recording the
    /// progress and the deadline, so the restarted call goes on from there.
    /// </summary>
    private long? WaitOnSocket(Waiter w, SocketFile s, long deadline, long done)
    {
        if (Clock.MonotonicNs >= deadline) return done > 0 ? done : -Errno.EAGAIN;
        bool goOn;
        try
        {
            goOn = SleepOn(w, Math.Min(deadline, s.NextEventNs), deadline == long.MaxValue ? ERESTARTSYS : Errno.EINTR);
        }
        catch (SignalInterruptException) when (done > 0)
        {
            return done;
        }
        if (goOn) return null;
        if (done > 0) _interruptedTransfer = (_callRip, done);
        if (deadline != long.MaxValue) _interruptedWait = (_callRip, deadline);
        throw new RestartException();
    }

    /// <summary>
    /// A receive into the program's buffers, waiting for data unless non-blocking. Returns the count (with MSG_TRUNC on a
    /// datagram: its whole length); <paramref name="msgFlags"/> gets MSG_TRUNC when a datagram was cut.
    /// </summary>
    private long ReceiveOn(SocketFile s, in UserIoVec into, int flags, Span<byte> from, out int fromLength, out int msgFlags)
    {
        fromLength = 0;
        msgFlags = 0;
        bool nonBlocking = s.NonBlocking || (flags & SocketFile.MSG_DONTWAIT) != 0;
        bool waitAll = (flags & (SocketFile.MSG_WAITALL | SocketFile.MSG_PEEK)) == SocketFile.MSG_WAITALL && s.IsStream && !nonBlocking;
        long done = waitAll ? Math.Min(_restartedDone, into.Total) : 0;
        long deadline = long.MaxValue;
        int chunk = (int)Math.Min(into.Total, MaxSocketTransfer);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(chunk, 1));
        Waiter? w = null;
        try
        {
            while (true)
            {
                w?.Arm();
                int want = (int)Math.Min(into.Total - done, chunk);
                long r = s.Receive(buffer.AsSpan(0, want), flags, from, out int fl, out int full);
                if (r >= 0)
                {
                    fromLength = fl;
                    int got = (int)Math.Min(r, want);
                    if (got > 0) ScatterIoVec(into, done, buffer.AsSpan(0, got));
                    done += got;
                    if (!s.IsStream)
                    {
                        if (full > got) msgFlags |= SocketFile.MSG_TRUNC;
                        return (flags & SocketFile.MSG_TRUNC) != 0 ? full : got;
                    }
                    if (r == 0 || !waitAll || done == into.Total) return done;
                    continue;
                }
                if (r != -Errno.EAGAIN) return done > 0 ? done : r;
                if (nonBlocking) return done > 0 ? done : -Errno.EAGAIN;
                if (w == null)
                {
                    w = new Waiter();
                    w.Listen(s.Queue!, PollEvents.Readable | PollEvents.RdHup);
                    deadline = _restartedDeadline ?? (s.ReceiveTimeoutNs > 0 ? MonotonicDeadline(s.ReceiveTimeoutNs) : long.MaxValue);
                    continue;
                }
                if (WaitOnSocket(w, s, deadline, done) is { } result) return result;
            }
        }
        finally
        {
            w?.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // read/write/readv/writev on a socket (Io.cs sends them here).
    private long SocketRead(SocketFile s, ulong buf, ulong count) =>
        ReceiveOn(s, UserIoVec.Single(buf, (long)Math.Min(count, int.MaxValue)), 0, default, out _, out _);

    private long SocketWrite(SocketFile s, ulong buf, ulong count) =>
        SendOn(s, UserIoVec.Single(buf, (long)Math.Min(count, int.MaxValue)), 0, default);

    private long SocketReadV(SocketFile s, ulong iov, ulong count)
    {
        long r = ReadIoVec(iov, count, out var vec);
        return r < 0 ? (r == -Errno.EMSGSIZE ? -Errno.EINVAL : r) : ReceiveOn(s, vec, 0, default, out _, out _);
    }

    private long SocketWriteV(SocketFile s, ulong iov, ulong count)
    {
        long r = ReadIoVec(iov, count, out var vec);
        return r < 0 ? (r == -Errno.EMSGSIZE ? -Errno.EINVAL : r) : SendOn(s, vec, 0, default);
    }

    private long SysSendTo(int fd, ulong buf, ulong length, int flags, ulong addr, ulong addrLength)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        byte[]? to = null;
        if (addr != 0)
        {
            to = ReadSockaddr(addr, addrLength, out e);
            if (to == null) return e;
        }
        return SendOn(s, UserIoVec.Single(buf, (long)Math.Min(length, int.MaxValue)), flags, to);
    }

    private long SysRecvFrom(int fd, ulong buf, ulong length, int flags, ulong addr, ulong addrLength)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        Span<byte> from = stackalloc byte[MaxSockaddr];
        long r = ReceiveOn(s, UserIoVec.Single(buf, (long)Math.Min(length, int.MaxValue)), flags, from, out int fromLength, out _);
        if (r >= 0 && addr != 0) WriteSockaddr(addr, addrLength, from, fromLength);
        return r;
    }

    private long SysSendMsg(int fd, ulong msg, int flags)
    {
        var s = SocketOf(fd, out long e);
        return s == null ? e : SendMessage(s, msg, flags);
    }

    private long SendMessage(SocketFile s, ulong msg, int flags)
    {
        ulong name = Memory.ReadU64(msg), nameLength = Memory.ReadU32(msg + 8);
        ulong iov = Memory.ReadU64(msg + 16), iovLength = Memory.ReadU64(msg + 24);
        byte[]? to = null;
        if (name != 0 && nameLength != 0)
        {
            to = ReadSockaddr(name, nameLength, out long e);
            if (to == null) return e;
        }
        long r = ReadIoVec(iov, iovLength, out var vec);
        return r < 0 ? r : SendOn(s, vec, flags, to);
    }

    private long SysRecvMsg(int fd, ulong msg, int flags)
    {
        var s = SocketOf(fd, out long e);
        return s == null ? e : ReceiveMessage(s, msg, flags);
    }

    private long ReceiveMessage(SocketFile s, ulong msg, int flags)
    {
        ulong name = Memory.ReadU64(msg);
        int nameRoom = (int)Memory.ReadU32(msg + 8);
        ulong iov = Memory.ReadU64(msg + 16), iovLength = Memory.ReadU64(msg + 24);
        ulong controlLength = Memory.ReadU64(msg + 40);
        long r = ReadIoVec(iov, iovLength, out var vec);
        if (r < 0) return r;
        Span<byte> from = stackalloc byte[MaxSockaddr];
        r = ReceiveOn(s, vec, flags & ~SocketFile.MSG_CMSG_CLOEXEC, from, out int fromLength, out int msgFlags);
        if (r < 0) return r;
        if (name != 0 && nameRoom > 0)
        {
            int n = Math.Min(Math.Min(nameRoom, fromLength), from.Length);
            if (n > 0) Memory.Write(name, from[..n]);
            Memory.WriteU32(msg + 8, (uint)fromLength);
        }
        else Memory.WriteU32(msg + 8, 0);
        if (controlLength != 0) Memory.WriteU64(msg + 40, 0);
        Memory.WriteU32(msg + 48, (uint)msgFlags);
        return r;
    }

    private long SysSendMMsg(int fd, ulong vec, uint count, int flags)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        count = Math.Min(count, MaxIov);
        int sent = 0;
        for (uint i = 0; i < count; i++)
        {
            ulong m = vec + i * MmsghdrSize;
            long r = SendMessage(s, m, flags);
            if (r < 0) return sent > 0 ? sent : r;
            Memory.WriteU32(m + MsghdrSize, (uint)r);
            sent++;
        }
        return sent;
    }

    private long SysRecvMMsg(int fd, ulong vec, uint count, int flags, ulong timeout)
    {
        var s = SocketOf(fd, out long e);
        if (s == null) return e;
        if (timeout != 0) return -Errno.EINVAL; // a recvmmsg timeout is not offered (Linux checks it only between messages)
        count = Math.Min(count, MaxIov);
        int got = 0;
        for (uint i = 0; i < count; i++)
        {
            ulong m = vec + i * MmsghdrSize;
            int fl = got > 0 && (flags & MSG_WAITFORONE) != 0 ? flags | SocketFile.MSG_DONTWAIT : flags;
            long r = ReceiveMessage(s, m, fl & ~MSG_WAITFORONE);
            if (r < 0) return got > 0 ? got : r;
            Memory.WriteU32(m + MsghdrSize, (uint)r);
            got++;
        }
        return got;
    }
}
