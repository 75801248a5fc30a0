using System.Buffers;
using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>read, write, pread64, readv, writev, lseek, ioctl.</summary>
internal sealed partial class SandboxKernel
{
    private const int MaxIov = 1024;

    /// <summary>Most bytes one writev gathers (a larger one returns a short count; reads stop at 16 MiB too).</summary>
    private const int MaxWriteV = 1 << 24;

    /// <summary>Whether reads and writes of <paramref name="f"/> wait on its queue here (pipes, eventfd, timerfd, epoll).</summary>
    private static bool WaitsOnQueue(FileDescription f) => f.Queue != null && !f.WaitsInReadWrite;

    private long SysRead(int fd, ulong buf, ulong count)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is SocketFile s) return SocketRead(s, buf, count);
        // Only as much as the program can take: what is read from a queue is gone from it (as Linux's pipe_read
        // stops where copy_to_user does, leaving the rest in the pipe).
        if (WaitsOnQueue(f)) return ReadWaiting(f, buf, ClampLength(buf, count, 1 << 24, write: true));
        using var wait = BlockingWait();
        try
        {
            return ReadIntoUser(buf, count, 1 << 24, b => ReadUnlockedIfSlow(f, b, wait.Token));
        }
        catch (OperationCanceledException)
        {
            throw WaitEnded(ERESTARTSYS);
        }
    }

    private long SysWrite(int fd, ulong buf, ulong count)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is SocketFile s) return SocketWrite(s, buf, count);
        // At most 16 MiB per call go through a pipe or the console (a larger blocking write returns that much, a short
        // count). The console's writes wait here too: held output at its bound makes them wait for room.
        if (WaitsOnQueue(f)) return WriteWaiting(f, buf, Math.Min(ClampLength(buf, count), 1 << 24));
        if (f is ConsoleFile) return WriteFromUser(buf, count, 1 << 24, data => WriteWaiting(f, data));
        return WriteFromUser(buf, count, 1 << 30, f.Write);
    }

    private long SysPRead(int fd, ulong buf, ulong count, long offset)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (offset < 0) return -Errno.EINVAL;
        return ReadIntoUser(buf, count, 1 << 24, b => f.PRead(b, offset));
    }

    private long SysLseek(int fd, long offset, int whence)
    {
        var f = Fds.Get(fd);
        return f == null ? -Errno.EBADF : f.Seek(offset, whence);
    }

    private long SysWriteV(int fd, ulong iov, ulong iovcnt)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (iovcnt > MaxIov) return -Errno.EINVAL;
        if (f is SocketFile s) return SocketWriteV(s, iov, iovcnt);
        // Gather first so the write is one piece of output, as on Linux. Lengths as Linux judges them (a negative
        // one or a negative sum: EINVAL); the buffer is sized by what the program can really be read from, at most
        // MaxWriteV (a short count beyond, as reads are), never by the lengths it claims: a 2 GiB iov_len over a
        // one-page buffer made the VMM allocate 2 GiB and die (found by tests/guests/sysfuzz.c).
        for (ulong i = 0; i < iovcnt; i++)
            if ((long)Memory.ReadU64(iov + i * 16 + 8) < 0) return -Errno.EINVAL;
        long total = 0, readable = 0;
        bool shortened = false;
        for (ulong i = 0; i < iovcnt; i++)
        {
            ulong b = Memory.ReadU64(iov + i * 16), l = Memory.ReadU64(iov + i * 16 + 8);
            total += (long)Math.Min(l, int.MaxValue);
            if (shortened || l == 0) continue;
            ulong want = Math.Min(l, (ulong)(MaxWriteV - readable));
            ulong n = Memory.Accessible(b, want, write: false);
            readable += (long)n;
            shortened = n < l || readable >= MaxWriteV;
        }
        if (readable == 0 && total > 0) return -Errno.EFAULT;
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)readable);
        try
        {
            int at = 0;
            for (ulong i = 0; i < iovcnt && at < readable; i++)
            {
                ulong b = Memory.ReadU64(iov + i * 16), l = Memory.ReadU64(iov + i * 16 + 8);
                if (l == 0) continue;
                int take = (int)Math.Min(l, (ulong)(readable - at));
                int got = Memory.ReadPartial(b, buffer.AsSpan(at, take));
                at += got;
                if (got < take) break; // the rest is not readable: write what came before it
            }
            if (at == 0 && total > 0) return -Errno.EFAULT;
            return WaitsOnQueue(f) || f is ConsoleFile ? WriteWaiting(f, buffer.AsSpan(0, at)) : f.Write(buffer.AsSpan(0, at));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private long SysReadV(int fd, ulong iov, ulong iovcnt)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (iovcnt > MaxIov) return -Errno.EINVAL;
        if (f is SocketFile s) return SocketReadV(s, iov, iovcnt);
        if (WaitsOnQueue(f)) return ReadVWaiting(f, iov, (int)iovcnt);
        long total = 0;
        for (ulong i = 0; i < iovcnt; i++)
        {
            ulong b = Memory.ReadU64(iov + i * 16), l = Memory.ReadU64(iov + i * 16 + 8);
            if (l == 0) continue;
            long n;
            using var wait = BlockingWait();
            try { n = ReadIntoUser(b, l, 1 << 24, s => f.Read(s, wait.Token)); }
            catch (OperationCanceledException) when (total == 0) { throw WaitEnded(ERESTARTSYS); }
            catch (OperationCanceledException) { return total; }
            if (n < 0) return total > 0 ? total : n;
            total += n;
            if ((ulong)n < l) break; // short: end of data, or the rest of this buffer is not writable
        }
        return total;
    }

    private const uint SIOCOUTQ = 0x5411, TCGETS = 0x5401, TIOCGWINSZ = 0x5413, TIOCGPGRP = 0x540F, FIONREAD = 0x541B, FIONBIO = 0x5421;

    private long SysIoctl(int fd, ulong request, ulong arg)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if ((uint)request == FIONBIO) return SetNonBlocking(f, arg);
        if (f is PipeFile pipe && (uint)request == FIONREAD)
        {
            Memory.WriteU32(arg, (uint)pipe.Pipe.Available);
            return 0;
        }
        if (f is SocketFile sock && (uint)request is FIONREAD or SIOCOUTQ)
        {
            // SIOCINQ (== FIONREAD): bytes readable (a datagram socket: the next one's length); SIOCOUTQ: not yet taken.
            if (sock.IsListening) return -Errno.EINVAL;
            Memory.WriteU32(arg, (uint)((uint)request == FIONREAD ? sock.ReadableBytes : sock.UnsentBytes));
            return 0;
        }
        if (!f.IsTerminal) return -Errno.ENOTTY;
        switch ((uint)request)
        {
            case TCGETS:
                // A cooked terminal: ICRNL IXON | OPOST ONLCR | B38400 CS8 CREAD | ISIG ICANON ECHO ECHOE ECHOK IEXTEN ECHOCTL ECHOKE
                Span<byte> t = stackalloc byte[36]; // the kernel's struct termios (glibc's own is larger)
                t.Clear();
                BinaryPrimitives.WriteUInt32LittleEndian(t, 0x500);
                BinaryPrimitives.WriteUInt32LittleEndian(t[4..], 0x5);
                BinaryPrimitives.WriteUInt32LittleEndian(t[8..], 0xBF);
                BinaryPrimitives.WriteUInt32LittleEndian(t[12..], 0x8A3B);
                byte[] cc = [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22];
                cc.CopyTo(t[17..]);
                Memory.Write(arg, t);
                return 0;
            case TIOCGWINSZ:
                Span<byte> w = stackalloc byte[8];
                w.Clear();
                BinaryPrimitives.WriteUInt16LittleEndian(w, 24);
                BinaryPrimitives.WriteUInt16LittleEndian(w[2..], 80);
                Memory.Write(arg, w);
                return 0;
            case TIOCGPGRP:
                Memory.WriteU32(arg, Pid);
                return 0;
            case FIONREAD:
                Memory.WriteU32(arg, 0);
                return 0;
            default:
                return -Errno.ENOTTY;
        }
    }
}
