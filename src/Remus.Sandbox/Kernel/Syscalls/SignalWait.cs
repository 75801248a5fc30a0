using Remus.Sandbox.Kernel.Signals;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// rt_sigtimedwait (sigwaitinfo, sigtimedwait, sigwait), as Linux's do_sigtimedwait: takes a pending signal of the
/// set (thread-directed first, lowest number first) whether or not it is blocked, and returns its number with its
/// siginfo; else waits for one until the timeout (EAGAIN). A signal outside the set that is not blocked ends the wait
/// with EINTR (its handler runs then). A pause or checkpoint during the wait restarts the call later with the time
/// that was left (Deadlines.cs).
/// </summary>
internal sealed partial class SandboxKernel
{
    private long SysRtSigtimedwait(ulong setAddr, ulong infoAddr, ulong timeoutAddr, ulong sigsetSize, ulong rip)
    {
        if (sigsetSize != 8) return -Errno.EINVAL;
        ulong set = Memory.ReadU64(setAddr) & ~Unblockable;
        long? deadline = _restartedDeadline;
        if (deadline is null && timeoutAddr != 0)
        {
            if (ReadTimespec(timeoutAddr) is not { } ns) return -Errno.EINVAL;
            deadline = MonotonicDeadline(ns);
        }
        while (true)
        {
            ExpireTimers();
            if (TakeWaitedSignal(set, out var info) is var sig && sig != 0)
            {
                if (infoAddr != 0)
                {
                    Span<byte> buf = stackalloc byte[SigInfo.Size];
                    info.WriteTo(buf);
                    Memory.Write(infoAddr, buf);
                }
                return sig;
            }
            if (HasInterruptingSignal()) throw new SignalInterruptException(Errno.EINTR); // never restarted
            lock (_wakeLock)
                if (_signalWake.IsCancellationRequested) _signalWake = new CancellationTokenSource();
            if (HasWaitedSignal(set)) continue; // it came in between: take it
            long left = deadline is { } d ? d - Clock.MonotonicNs : long.MaxValue;
            if (left <= 0) return -Errno.EAGAIN;
            var timeout = left == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(Math.Min(left / 1_000_000 + 1, int.MaxValue - 1));
            if (WaitHandle.WaitAny([Interrupt.WaitHandle, SignalToken.WaitHandle], timeout) == 0)
            {
                if (deadline is { } dl) _interruptedWait = (rip, dl);
                throw new RestartException();
            }
        }
    }

    private bool HasWaitedSignal(ulong set) => ((Task.Pending.Set | Signals.Pending.Set) & set) != 0;

    /// <summary>Takes the lowest pending signal of <paramref name="set"/>, the thread's own before the process's; 0 if none.</summary>
    private int TakeWaitedSignal(ulong set, out SigInfo info)
    {
        info = default;
        ulong own = Task.Pending.Set & set, shared = Signals.Pending.Set & set;
        if ((own | shared) == 0) return 0;
        if (own != 0)
        {
            int sig = System.Numerics.BitOperations.TrailingZeroCount(own) + 1;
            info = Task.Pending.Take(sig);
            return sig;
        }
        int s = System.Numerics.BitOperations.TrailingZeroCount(shared) + 1;
        info = Signals.Pending.Take(s);
        return s;
    }
}
