using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Remus.Sandbox.Kernel.Tasks;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// futex: WAIT, WAKE, WAIT_BITSET, WAKE_BITSET, WAKE_OP, REQUEUE, CMP_REQUEUE, with or without FUTEX_PRIVATE_FLAG
/// (one process: every futex is private), timeouts relative (WAIT) or absolute on CLOCK_MONOTONIC or, with
/// FUTEX_CLOCK_REALTIME, CLOCK_REALTIME (WAIT_BITSET), and Linux's errors (EAGAIN for a changed value, ETIMEDOUT,
/// EINVAL, EFAULT, ENOSYS for PI and unknown operations). Waiters queue per address in arrival order, under the
/// kernel lock; a wait compares the value and queues under the lock and sleeps without it, so a wake after the
/// program changed the value is never lost. A wait ends on a signal like any other (ERESTARTSYS without a timeout;
/// with one, restart_syscall waits out the same deadline), and gives way to pause and checkpoint: the call is
/// re-executed afterwards (a waiter comes back as a thread restarting its wait, its deadline kept).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_REQUEUE = 3, FUTEX_CMP_REQUEUE = 4, FUTEX_WAKE_OP = 5,
        FUTEX_WAIT_BITSET = 9, FUTEX_WAKE_BITSET = 10, FUTEX_WAIT_REQUEUE_PI = 11, FUTEX_LOCK_PI2 = 13,
        FUTEX_PRIVATE_FLAG = 128, FUTEX_CLOCK_REALTIME = 256;
    private const uint FutexBitsetAll = uint.MaxValue;

    private readonly Dictionary<ulong, List<FutexWaiter>> _futexQueues = [];

    private long SysFutex(ulong uaddr, int op, uint val, ulong timeout, ulong uaddr2, uint val3, ulong rip)
    {
        int cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
        bool realtime = (op & FUTEX_CLOCK_REALTIME) != 0;
        if (realtime && cmd is not (FUTEX_WAIT_BITSET or FUTEX_WAIT_REQUEUE_PI or FUTEX_LOCK_PI2)) return -Errno.ENOSYS;
        switch (cmd)
        {
            case FUTEX_WAIT:
                return FutexWait(uaddr, val, timeout, absolute: false, realtime: false, FutexBitsetAll, rip);
            case FUTEX_WAIT_BITSET:
                return val3 == 0 ? -Errno.EINVAL : FutexWait(uaddr, val, timeout, absolute: true, realtime, val3, rip);
            case FUTEX_WAKE:
                return (uaddr & 3) != 0 ? -Errno.EINVAL : FutexWake(uaddr, (int)val, FutexBitsetAll);
            case FUTEX_WAKE_BITSET:
                return (uaddr & 3) != 0 || val3 == 0 ? -Errno.EINVAL : FutexWake(uaddr, (int)val, val3);
            case FUTEX_REQUEUE:
                return FutexRequeue(uaddr, (int)val, (int)timeout, uaddr2, null);
            case FUTEX_CMP_REQUEUE:
                return FutexRequeue(uaddr, (int)val, (int)timeout, uaddr2, val3);
            case FUTEX_WAKE_OP:
                return FutexWakeOp(uaddr, (int)val, uaddr2, (int)timeout, val3);
            default:
                if (_loggedUnsupported.Add(-202000 - cmd)) Log?.Invoke($"unsupported futex operation {cmd}: returning ENOSYS");
                return -Errno.ENOSYS;
        }
    }

    private long FutexWait(ulong uaddr, uint val, ulong timeout, bool absolute, bool realtime, uint bitset, ulong rip)
    {
        if ((uaddr & 3) != 0) return -Errno.EINVAL;
        long? deadline = _restartedDeadline;
        if (deadline == null && timeout != 0)
        {
            long sec = (long)Memory.ReadU64(timeout), nsec = (long)Memory.ReadU64(timeout + 8);
            if (sec < 0 || nsec < 0 || nsec >= NsPerSec) return -Errno.EINVAL;
            long t = sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + nsec;
            // The wait keeps a monotonic deadline, which a restart reuses.
            deadline = !absolute ? MonotonicDeadline(t)
                : Clock.MonotonicNs + (t - (realtime ? GuestClock.RealtimeNs : Clock.MonotonicNs));
        }
        try
        {
            return FutexWaitUntil(uaddr, val, deadline, bitset, rip);
        }
        catch (SignalInterruptException) when (deadline != null)
        {
            _restartBlock = new RestartBlock(RestartKind.Futex, deadline.Value, uaddr, val);
            throw;
        }
    }

    /// <summary>The wait itself: 0 when woken, EAGAIN, ETIMEDOUT; a signal throws, a pause restarts the call.</summary>
    private long FutexWaitUntil(ulong uaddr, uint val, long? deadline, uint bitset, ulong rip)
    {
        if (Memory.ReadU32(uaddr) != val) return -Errno.EAGAIN;
        using var w = new FutexWaiter(Current, uaddr, bitset);
        FutexQueue(uaddr).Add(w);
        try
        {
            while (true)
            {
                if (w.Woken) return 0;
                long left = deadline is { } d ? d - Clock.MonotonicNs : -1;
                if (deadline != null && left <= 0) return -Errno.ETIMEDOUT;
                InterruptIfSignalled(deadline != null ? ERESTART_RESTARTBLOCK : ERESTARTSYS);
                // Whole milliseconds, rounded up: never before the deadline (the loop looks again anyway).
                int ms = left < 0 ? Timeout.Infinite : (int)Math.Min(left / 1_000_000 + 1, int.MaxValue - 1);
                using (Unlocked()) WaitHandle.WaitAny([w.Event, Interrupt.WaitHandle, SignalToken.WaitHandle], ms);
                if (w.Woken) return 0;
                if (Interrupt.IsCancellationRequested)
                {
                    if (deadline != null) _interruptedWait = (rip, deadline.Value);
                    throw new RestartException();
                }
            }
        }
        finally
        {
            if (!w.Woken) FutexRemove(w);
        }
    }

    private List<FutexWaiter> FutexQueue(ulong addr)
    {
        if (!_futexQueues.TryGetValue(addr, out var q)) _futexQueues[addr] = q = [];
        return q;
    }

    private void FutexRemove(FutexWaiter w)
    {
        if (!_futexQueues.TryGetValue(w.Address, out var q)) return;
        q.Remove(w);
        if (q.Count == 0) _futexQueues.Remove(w.Address);
    }

    /// <summary>Wakes up to <paramref name="count"/> waiters at <paramref name="uaddr"/> whose bitset meets
    /// <paramref name="bitset"/>, oldest first; as Linux's futex_wake, a count of 0 still wakes one.</summary>
    private int FutexWake(ulong uaddr, int count, uint bitset)
    {
        if (!_futexQueues.TryGetValue(uaddr, out var q)) return 0;
        int woken = 0;
        for (int i = 0; i < q.Count;)
        {
            var w = q[i];
            if ((w.Bitset & bitset) == 0) { i++; continue; }
            q.RemoveAt(i);
            w.Wake();
            if (++woken >= count) break;
        }
        if (q.Count == 0) _futexQueues.Remove(uaddr);
        return woken;
    }

    /// <summary>REQUEUE and CMP_REQUEUE: wakes <paramref name="nrWake"/>, moves up to <paramref name="nrRequeue"/> more
    /// to <paramref name="uaddr2"/>; returns how many were woken or moved.</summary>
    private long FutexRequeue(ulong uaddr, int nrWake, int nrRequeue, ulong uaddr2, uint? expected)
    {
        if ((uaddr & 3) != 0 || (uaddr2 & 3) != 0) return -Errno.EINVAL;
        if (nrWake < 0 || nrRequeue < 0) return -Errno.EINVAL;
        if (expected is { } cmp && Memory.ReadU32(uaddr) != cmp) return -Errno.EAGAIN;
        if (!_futexQueues.TryGetValue(uaddr, out var q)) return 0;
        int count = 0;
        // Each waiter is looked at once, in order (a requeue onto the same address puts it back at the end).
        foreach (var w in q.ToArray())
        {
            if (count - nrWake >= nrRequeue) break;
            q.Remove(w);
            if (++count <= nrWake)
            {
                w.Wake();
                continue;
            }
            w.Address = uaddr2;
            FutexQueue(uaddr2).Add(w);
        }
        if (q.Count == 0) _futexQueues.Remove(uaddr);
        return count;
    }

    private const int FUTEX_OP_SET = 0, FUTEX_OP_ADD = 1, FUTEX_OP_OR = 2, FUTEX_OP_ANDN = 3, FUTEX_OP_XOR = 4;

    /// <summary>WAKE_OP: atomically applies the encoded operation to *uaddr2, wakes at uaddr, and at uaddr2 when the
    /// old value met the encoded comparison.</summary>
    private long FutexWakeOp(ulong uaddr, int nrWake, ulong uaddr2, int nrWake2, uint encoded)
    {
        if ((uaddr & 3) != 0 || (uaddr2 & 3) != 0) return -Errno.EINVAL;
        int op = (int)((encoded >> 28) & 7), cmp = (int)((encoded >> 24) & 15);
        int oparg = (int)(encoded << 8) >> 20, cmparg = (int)(encoded << 20) >> 20; // 12-bit, sign-extended
        if ((encoded & 0x80000000) != 0) oparg = 1 << (oparg & 31);  // FUTEX_OP_OPARG_SHIFT
        if (op > FUTEX_OP_XOR || cmp > 5) return -Errno.ENOSYS;
        // The program's other threads may be using the word right now: one atomic read-modify-write on guest memory.
        ref int word = ref Unsafe.As<byte, int>(ref MemoryMarshal.GetReference(Memory.WritableSpan(uaddr2, 4)));
        int old;
        while (true)
        {
            old = Volatile.Read(ref word);
            int next = op switch
            {
                FUTEX_OP_SET => oparg,
                FUTEX_OP_ADD => old + oparg,
                FUTEX_OP_OR => old | oparg,
                FUTEX_OP_ANDN => old & ~oparg,
                _ => old ^ oparg,
            };
            if (Interlocked.CompareExchange(ref word, next, old) == old) break;
        }
        int woken = FutexWake(uaddr, nrWake, FutexBitsetAll);
        bool met = cmp switch
        {
            0 => old == cmparg,
            1 => old != cmparg,
            2 => old < cmparg,
            3 => old <= cmparg,
            4 => old > cmparg,
            _ => old >= cmparg,
        };
        if (met) woken += FutexWake(uaddr2, nrWake2, FutexBitsetAll);
        return woken;
    }
}
