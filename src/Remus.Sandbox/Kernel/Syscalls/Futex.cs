namespace Remus.Sandbox.Kernel;

/// <summary>futex: one thread only, so a wake wakes no one and a wait whose value still matches sleeps until its timeout.</summary>
internal sealed partial class SandboxKernel
{
    private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_WAIT_BITSET = 9, FUTEX_WAKE_BITSET = 10, FUTEX_CMD_MASK = 0x7F,
        FUTEX_CLOCK_REALTIME = 256;

    private long SysFutex(ulong uaddr, int op, uint val, ulong timeout, ulong rip)
    {
        switch (op & FUTEX_CMD_MASK)
        {
            case FUTEX_WAKE or FUTEX_WAKE_BITSET:
                Memory.ReadU32(uaddr);
                return 0;
            case FUTEX_WAIT or FUTEX_WAIT_BITSET:
                long? deadline = _restartedDeadline;
                if (deadline == null && timeout != 0)
                {
                    long sec = (long)Memory.ReadU64(timeout), nsec = (long)Memory.ReadU64(timeout + 8);
                    if (sec < 0 || nsec < 0 || nsec >= NsPerSec) return -Errno.EINVAL;
                    long t = sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + nsec;
                    // FUTEX_WAIT's timeout is relative; FUTEX_WAIT_BITSET's is absolute, on CLOCK_MONOTONIC or (flag)
                    // CLOCK_REALTIME. Either way the wait keeps a monotonic deadline, which a restart reuses.
                    if ((op & FUTEX_CMD_MASK) == FUTEX_WAIT) deadline = MonotonicDeadline(t);
                    else deadline = Clock.MonotonicNs + (t - ((op & FUTEX_CLOCK_REALTIME) != 0 ? GuestClock.RealtimeNs : Clock.MonotonicNs));
                }
                if (Memory.ReadU32(uaddr) != val) return -Errno.EAGAIN;
                if (deadline == null)
                {
                    WaitForSignal(ERESTARTSYS); // nobody else can wake it: only a signal, pause or destroy end this
                    throw new RestartException();
                }
                try
                {
                    SleepUntil(deadline.Value, rip);
                }
                catch (SignalInterruptException)
                {
                    _restartBlock = new RestartBlock(RestartKind.Futex, deadline.Value, uaddr, val);
                    throw;
                }
                return -Errno.ETIMEDOUT;
            default:
                return -Errno.ENOSYS;
        }
    }
}
