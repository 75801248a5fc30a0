using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Locks;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// flock and fcntl record locks (F_GETLK/F_SETLK/F_SETLKW and the OFD variants), with Linux's checks in Linux's
/// order (fs/locks.c: fcntl_getlk, fcntl_setlk, flock). The locks live in <see cref="LockTable"/>; a blocked
/// F_SETLKW or flock waits on its queue without the kernel lock, is interrupted by a signal (ERESTARTSYS: EINTR, or a
/// restart under SA_RESTART) and restarts after a pause or checkpoint (waiters are not state: the call runs again).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8, LOCK_MAND = 32;
    private const int SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2;
    private const int O_PATH = 0x200000;
    private const int FlockSize = 32; // struct flock on x86-64: l_type, l_whence, l_start, l_len, l_pid

    private long SysFlock(int fd, int operation)
    {
        if ((operation & LOCK_MAND) != 0) return 0; // ignored since Linux 5.15 (never worked)
        short type = (operation & ~LOCK_NB) switch
        {
            LOCK_SH => LockType.Read,
            LOCK_EX => LockType.Write,
            LOCK_UN => LockType.Unlock,
            _ => -1,
        };
        if (type < 0) return -Errno.EINVAL;
        var f = Fds.Get(fd);
        if (f == null || (f.Flags & O_PATH) != 0) return -Errno.EBADF;
        if (type != LockType.Unlock && !CanRead(f) && !CanWrite(f)) return -Errno.EBADF;
        long r = Fds.Locks.Flock(f, type);
        if (r == -Errno.EAGAIN && (operation & LOCK_NB) == 0)
        {
            r = WaitForLock(() => Fds.Locks.Flock(f, type));
            DropIfClosedMeanwhile(f, r);
        }
        return r;
    }

    private long SysFcntlLock(int fd, FileDescription f, int cmd, ulong arg)
    {
        if ((f.Flags & O_PATH) != 0) return -Errno.EBADF;
        Span<byte> fl = stackalloc byte[FlockSize];
        Memory.Read(arg, fl);
        short type = BinaryPrimitives.ReadInt16LittleEndian(fl);
        short whence = BinaryPrimitives.ReadInt16LittleEndian(fl[2..]);
        long lstart = BinaryPrimitives.ReadInt64LittleEndian(fl[8..]), llen = BinaryPrimitives.ReadInt64LittleEndian(fl[16..]);
        int pid = BinaryPrimitives.ReadInt32LittleEndian(fl[24..]);
        bool ofd = cmd is F_OFD_GETLK or F_OFD_SETLK or F_OFD_SETLKW;

        if (cmd is F_GETLK or F_OFD_GETLK)
        {
            if (type != LockType.Read && type != LockType.Write) return -Errno.EINVAL;
            long e = LockRange(f, whence, lstart, llen, out long start, out long end);
            if (e < 0) return e;
            if (ofd && pid != 0) return -Errno.EINVAL;
            if (Fds.Locks.Test(f, ofd, type, start, end) is { } c)
            {
                BinaryPrimitives.WriteInt16LittleEndian(fl, c.Type);
                BinaryPrimitives.WriteInt16LittleEndian(fl[2..], SEEK_SET);
                BinaryPrimitives.WriteInt64LittleEndian(fl[8..], c.Start);
                BinaryPrimitives.WriteInt64LittleEndian(fl[16..], c.End == long.MaxValue ? 0 : c.End - c.Start + 1);
                BinaryPrimitives.WriteInt32LittleEndian(fl[24..], c.Ofd ? -1 : Pid); // OFD locks have no pid
            }
            else BinaryPrimitives.WriteInt16LittleEndian(fl, LockType.Unlock);
            Memory.Write(arg, fl);
            return 0;
        }

        long err = LockRange(f, whence, lstart, llen, out long s, out long en);
        if (err < 0) return err;
        if (type is not (LockType.Read or LockType.Write or LockType.Unlock)) return -Errno.EINVAL;
        if ((type == LockType.Read && !CanRead(f)) || (type == LockType.Write && !CanWrite(f))) return -Errno.EBADF;
        if (ofd && pid != 0) return -Errno.EINVAL;
        long r = Fds.Locks.Set(f, ofd, type, s, en);
        if (r == -Errno.EAGAIN && cmd is F_SETLKW or F_OFD_SETLKW)
        {
            r = WaitForLock(() => Fds.Locks.Set(f, ofd, type, s, en));
            if (ofd) DropIfClosedMeanwhile(f, r);
        }
        // Another thread closed the fd meanwhile: the lock must not outlive it (fcntl_setlk's close race check).
        if (r == 0 && type != LockType.Unlock && !ofd && Fds.Get(fd) != f)
        {
            Fds.Locks.ClosedFd(f);
            return -Errno.EBADF;
        }
        return r;
    }

    /// <summary>
    /// After a wait: when another thread closed the description's last fd meanwhile, the lock just taken goes with it
    /// (on Linux the call holds the file until it returns, and its final fput drops the description's locks).
    /// </summary>
    private void DropIfClosedMeanwhile(FileDescription f, long r)
    {
        if (r == 0 && !Fds.Refers(f)) Fds.Locks.Released(f);
    }

    /// <summary>struct flock's range as [start, end] (Linux's flock_to_posix_lock); 0 or a negated errno.</summary>
    private static long LockRange(FileDescription f, short whence, long lstart, long llen, out long start, out long end)
    {
        start = end = 0;
        long b;
        switch (whence)
        {
            case SEEK_SET: b = 0; break;
            case SEEK_CUR: b = Math.Max(f.Seek(0, SEEK_CUR), 0); break; // f_pos (0 for files that do not seek)
            case SEEK_END: b = FileSize(f); break;
            default: return -Errno.EINVAL;
        }
        if (lstart > long.MaxValue - b) return -Errno.EOVERFLOW;
        start = b + lstart;
        if (start < 0) return -Errno.EINVAL;
        if (llen > 0)
        {
            if (llen - 1 > long.MaxValue - start) return -Errno.EOVERFLOW;
            end = start + (llen - 1);
        }
        else if (llen < 0)
        {
            if (start + llen < 0) return -Errno.EINVAL;
            end = start - 1;
            start += llen;
        }
        else end = long.MaxValue;
        return 0;
    }

    private static long FileSize(FileDescription f)
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        return f.Stat(st) == 0 ? Math.Max(BinaryPrimitives.ReadInt64LittleEndian(st[48..]), 0) : 0;
    }

    /// <summary>The access mode as F_GETFL reports it (the console's output streams are opened for writing).</summary>
    private static int AccessMode(FileDescription f) => (f.Flags & O_ACCMODE) | (f is ConsoleFile { Stream: not 0 } ? 1 : 0);

    private static bool CanRead(FileDescription f) => AccessMode(f) is 0 or 2;

    private static bool CanWrite(FileDescription f) => AccessMode(f) is 1 or 2;

    /// <summary>
    /// Tries <paramref name="attempt"/> until it no longer says EAGAIN, sleeping on the lock table's queue in between
    /// (without the kernel lock). A signal interrupts with ERESTARTSYS (EINTR, or a restart under SA_RESTART, as
    /// Linux's locks_lock_inode_wait); a pause or checkpoint restarts the call.
    /// </summary>
    private long WaitForLock(Func<long> attempt)
    {
        using var w = new Waiter();
        w.Listen(Fds.Locks.Queue, PollEvents.None);
        while (true)
        {
            w.Arm();
            long r = attempt();
            if (r != -Errno.EAGAIN) return r;
            if (!SleepOn(w, long.MaxValue, ERESTARTSYS)) throw new RestartException();
        }
    }
}
