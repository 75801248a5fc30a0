using System.Buffers;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// read and write on files with a readiness model (pipes, eventfd, timerfd): the file says EAGAIN, and unless the
/// file is O_NONBLOCK the call waits on the file's queue and asks again. A wait gives way to pause, checkpoint and
/// destroy (the call restarts afterwards from its syscall instruction), and to a signal (EINTR, or a restart under
/// SA_RESTART: ERESTARTSYS, as pipe_read and pipe_write return). A write that had put part of its data in
/// before it had to wait keeps that progress for its restart (here, and in checkpoints), so the restart puts in only
/// the rest and returns the whole count, as one uninterrupted write would.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int SIGPIPE = 13;

    /// <summary>rip of the call being served (the address after its syscall instruction).</summary>
    private ref ulong _callRip => ref Current.CallRip;

    /// <summary>A blocking write interrupted after putting in <c>Done</c> bytes, at Rip.</summary>
    private ref (ulong Rip, long Done)? _interruptedTransfer => ref Current.InterruptedTransfer;

    /// <summary>The progress of the interrupted write when the call being served is its restart; else 0.</summary>
    private ref long _restartedDone => ref Current.RestartedDone;

    /// <summary>At each call: a restarted write finds its progress; any other call forgets it.</summary>
    private void TakeInterruptedTransfer(ulong rip)
    {
        _callRip = rip;
        _restartedDone = _interruptedTransfer is { } t && t.Rip == rip ? t.Done : 0;
        _interruptedTransfer = null;
    }

    /// <summary>
    /// Sleeps until <paramref name="w"/> is woken or the guest's monotonic clock reaches <paramref name="wakeAt"/>.
    /// True: look again (woken, timed out, or a timer fired whose signal does not concern this wait — blocked or
    /// ignored, e.g. under ppoll's mask — so the call waits on, as Linux's would never have woken). False: a pause,
    /// checkpoint or destroy; the caller restarts the call later. A signal that would run a handler, stop or end the
    /// program throws <see cref="SignalInterruptException"/> with <paramref name="restartCode"/> (SignalWaits.cs).
    /// </summary>
    private bool SleepOn(Waiter w, long wakeAt, long restartCode)
    {
        long left = wakeAt == long.MaxValue ? -1 : Math.Max(wakeAt - Clock.MonotonicNs, 0);
        using (var wait = BlockingWait())
        using (Unlocked())
            if (w.Sleep(left, wait.Token)) return true;
        if (Interrupt.IsCancellationRequested) return false;
        InterruptIfSignalled(restartCode);
        return true;
    }

    /// <summary>
    /// One read from a file with a queue into <paramref name="span"/>: unless the file is O_NONBLOCK, an empty file
    /// is waited on (a pause restarts the call; a signal ends it, see <see cref="SleepOn"/>).
    /// </summary>
    private long ReadBlocking(FileDescription f, Span<byte> span)
    {
        long r = f.Read(span, Interrupt);
        if (r != -Errno.EAGAIN || f.NonBlocking) return r;
        using var w = new Waiter();
        w.Listen(f.Queue!, PollEvents.Readable);
        while (true)
        {
            w.Arm();
            r = f.Read(span, Interrupt);
            if (r != -Errno.EAGAIN) return r;
            if (!SleepOn(w, f.NextEventNs, ERESTARTSYS)) throw new RestartException();
        }
    }

    /// <summary>read(2) into guest memory from a file with a queue.</summary>
    private long ReadWaiting(FileDescription f, ulong buf, int count)
    {
        byte[] tmp = ArrayPool<byte>.Shared.Rent(Math.Max(Math.Min(count, 1 << 20), 1));
        try
        {
            var span = tmp.AsSpan(0, Math.Min(count, tmp.Length));
            long r = ReadBlocking(f, span);
            if (r > 0) Memory.Write(buf, span[..(int)r]);
            return r;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>write(2) of guest memory to a file with a queue.</summary>
    private long WriteWaiting(FileDescription f, ulong buf, int count)
    {
        byte[] tmp = ArrayPool<byte>.Shared.Rent(Math.Max(count, 1));
        try
        {
            Memory.Read(buf, tmp.AsSpan(0, count));
            return WriteWaiting(f, tmp.AsSpan(0, count));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>The write of <paramref name="data"/> (already copied from the guest) to a file with a queue.</summary>
    private long WriteWaiting(FileDescription f, ReadOnlySpan<byte> data)
    {
        long done = Math.Min(_restartedDone, data.Length);
        bool first = _restartedDone == 0; // only a write's first attempt merges into a pipe's last page
        Waiter? w = null;
        try
        {
            while (true)
            {
                w?.Arm();
                long r = first ? f.Write(data) : f.WriteContinued(data[(int)done..]);
                first = false;
                if (r == -Errno.EPIPE)
                {
                    RaiseSignal(SIGPIPE); // returns unless the signal ends the program
                    return done > 0 ? done : r;
                }
                if (r < 0 && r != -Errno.EAGAIN) return done > 0 ? done : r;
                if (r > 0) done += r;
                // Only a pipe or the console (held output at its bound) takes part of a write and the rest later; an
                // eventfd takes its 8 bytes of any write.
                if (done == data.Length || data.Length == 0 || (r > 0 && f is not (PipeFile or ConsoleFile))) return done;
                if (f.NonBlocking) return done > 0 ? done : -Errno.EAGAIN;
                if (w == null)
                {
                    w = new Waiter();
                    w.Listen(f.Queue!, PollEvents.Writable);
                    continue; // look once more now that we listen
                }
                bool goOn;
                try
                {
                    goOn = SleepOn(w, f.NextEventNs, ERESTARTSYS);
                }
                catch (SignalInterruptException) when (done > 0)
                {
                    return done; // a signal after some bytes went in: the short count, as pipe_write
                }
                if (!goOn)
                {
                    if (done > 0) _interruptedTransfer = (_callRip, done);
                    throw new RestartException();
                }
            }
        }
        finally
        {
            w?.Dispose();
        }
    }

    /// <summary>readv(2) from a file with a queue: one read (waiting like read) scattered over the buffers.</summary>
    private long ReadVWaiting(FileDescription f, ulong iov, int iovcnt)
    {
        // Read only what the buffers can take, up to the first one that stops short (what is read from the queue
        // is gone from it: a buffer that claims more than is writable must not lose the rest, as Linux's pipe_read
        // leaves it in the pipe); at most 1 MiB.
        long writable = 0;
        for (int i = 0; i < iovcnt && writable < 1 << 20; i++)
        {
            ulong b = Memory.ReadU64(iov + (ulong)i * 16), l = Memory.ReadU64(iov + (ulong)i * 16 + 8);
            ulong want1 = Math.Min(l, (ulong)((1 << 20) - writable));
            ulong n = Memory.Accessible(b, want1, write: true);
            writable += (long)n;
            if (n < want1) break;
        }
        if (writable == 0 && Enumerable.Range(0, iovcnt).Any(i => Memory.ReadU64(iov + (ulong)i * 16 + 8) != 0)) return -Errno.EFAULT;
        int want = (int)writable;
        byte[] tmp = ArrayPool<byte>.Shared.Rent(Math.Max(want, 1));
        try
        {
            var span = tmp.AsSpan(0, want);
            long r = ReadBlocking(f, span);
            if (r <= 0) return r;
            int at = 0;
            for (int i = 0; i < iovcnt && at < r; i++)
            {
                ulong b = Memory.ReadU64(iov + (ulong)i * 16), l = Memory.ReadU64(iov + (ulong)i * 16 + 8);
                int n = (int)Math.Min(l, (ulong)(r - at));
                if (n > 0) Memory.Write(b, span.Slice(at, n));
                at += n;
            }
            return r;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>FIONBIO: sets or clears O_NONBLOCK, as F_SETFL would.</summary>
    private long SetNonBlocking(FileDescription f, ulong arg)
    {
        bool on = Memory.ReadU32(arg) != 0;
        f.Flags = on ? f.Flags | FileDescription.O_NONBLOCK : f.Flags & ~FileDescription.O_NONBLOCK;
        return 0;
    }
}
