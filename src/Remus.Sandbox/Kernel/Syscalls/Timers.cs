using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Kernel.Tasks;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// setitimer, getitimer, alarm, timer_create, timer_settime, timer_gettime, timer_getoverrun, timer_delete.
/// Timers fire on the vCPU thread (<see cref="ExpireTimers"/>, at every return to the program and when a blocking
/// call wakes); one host timer, set to the nearest expiry, only wakes the program (<see cref="WakeForSignal"/>).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int ITIMER_REAL = 0, ITIMER_VIRTUAL = 1, ITIMER_PROF = 2;
    private const int SIGALRM = 14, SIGVTALRM = 26, SIGPROF = 27;
    private const int MaxPosixTimers = 1 << 14;

    private readonly GuestTimer[] _itimers =
    [
        new() { Id = -1, Signal = SIGALRM },
        new() { Id = -2, Signal = SIGVTALRM, CpuClock = true },
        new() { Id = -3, Signal = SIGPROF, CpuClock = true },
    ];
    private readonly SortedDictionary<int, GuestTimer> _posixTimers = [];
    private Timer? _hostTimer;
    private bool _timersArmed;
    private long _nextMonotonicDue = long.MaxValue;

    private IEnumerable<GuestTimer> AllTimers => _itimers.Concat(_posixTimers.Values);

    // ---- itimers ---------------------------------------------------------------------------------------------

    private long SysSetitimer(int which, ulong value, ulong oldValue)
    {
        if (which is < ITIMER_REAL or > ITIMER_PROF) return -Errno.EINVAL;
        long interval = 0, next = 0;
        if (value != 0)
        {
            if (ReadTimeval(value) is not { } i || ReadTimeval(value + 16) is not { } v) return -Errno.EINVAL;
            interval = i;
            next = v;
        }
        GuestTimer t = _itimers[which];
        if (oldValue != 0) WriteItimerval(oldValue, t);
        Arm(t, next, interval, absolute: false);
        return 0;
    }

    private long SysGetitimer(int which, ulong value)
    {
        if (which is < ITIMER_REAL or > ITIMER_PROF) return -Errno.EINVAL;
        WriteItimerval(value, _itimers[which]);
        return 0;
    }

    private long SysAlarm(uint seconds)
    {
        GuestTimer t = _itimers[ITIMER_REAL];
        long left = Remaining(t);
        Arm(t, seconds * NsPerSec, 0, absolute: false);
        // As alarm_setitimer: whole seconds, rounded to nearest, never 0 for a pending alarm.
        long s = left / NsPerSec, us = left % NsPerSec / 1000;
        if ((s == 0 && us != 0) || us >= 500_000) s++;
        return s;
    }

    private long? ReadTimeval(ulong addr)
    {
        long s = (long)Memory.ReadU64(addr), us = (long)Memory.ReadU64(addr + 8);
        if (s < 0 || us < 0 || us >= 1_000_000) return null;
        return s > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 4 : s * NsPerSec + us * 1000;
    }

    private void WriteItimerval(ulong addr, GuestTimer t)
    {
        long left = Remaining(t);
        // Linux rounds a pending timer's remaining time up to whole microseconds (never 0 while armed).
        long leftUs = t.Armed ? Math.Max(1, (left + 999) / 1000) : 0, ivUs = (t.IntervalNs + 999) / 1000;
        Memory.WriteU64(addr, (ulong)(ivUs / 1_000_000));
        Memory.WriteU64(addr + 8, (ulong)(ivUs % 1_000_000));
        Memory.WriteU64(addr + 16, (ulong)(leftUs / 1_000_000));
        Memory.WriteU64(addr + 24, (ulong)(leftUs % 1_000_000));
    }

    // ---- POSIX timers ----------------------------------------------------------------------------------------

    private long SysTimerCreate(int clock, ulong sevp, ulong timerIdOut)
    {
        bool cpu;
        switch (clock)
        {
            case CLOCK_REALTIME or CLOCK_MONOTONIC or CLOCK_BOOTTIME: cpu = false; break;
            case CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID: cpu = true; break;
            case < 0 when CpuClockOf(clock) != null: cpu = true; break;
            case CLOCK_REALTIME_ALARM or CLOCK_BOOTTIME_ALARM: return -Errno.EPERM;
            default: return -Errno.EINVAL;
        }
        int id = 0;
        while (_posixTimers.ContainsKey(id)) id++;
        if (id >= MaxPosixTimers) return -Errno.EAGAIN;
        int signal = SIGALRM, notify = GuestTimer.SIGEV_SIGNAL;
        ulong value = (ulong)id;
        if (sevp != 0)
        {
            value = Memory.ReadU64(sevp);
            signal = (int)Memory.ReadU32(sevp + 8);
            notify = (int)Memory.ReadU32(sevp + 12);
            int tid = (int)Memory.ReadU32(sevp + 16);
            switch (notify)
            {
                case GuestTimer.SIGEV_NONE: break;
                case GuestTimer.SIGEV_SIGNAL: if (!ValidSignal(signal)) return -Errno.EINVAL; break;
                case GuestTimer.SIGEV_THREAD_ID: if (!ValidSignal(signal) || FindTask(tid) == null) return -Errno.EINVAL; break;
                default: return -Errno.EINVAL;
            }
        }
        Memory.WriteU32(timerIdOut, (uint)id);
        _posixTimers[id] = new GuestTimer { Id = id, CpuClock = cpu, ClockId = clock, Signal = signal, Notify = notify, Value = value,
            Tid = notify == GuestTimer.SIGEV_THREAD_ID ? (int)Memory.ReadU32(sevp + 16) : 0 };
        return 0;
    }

    private long SysTimerSettime(int id, int flags, ulong newValue, ulong oldValue)
    {
        if (!_posixTimers.TryGetValue(id, out var t)) return -Errno.EINVAL;
        if (newValue == 0) return -Errno.EINVAL;
        if (ReadTimespec(newValue) is not { } interval || ReadTimespec(newValue + 16) is not { } value) return -Errno.EINVAL;
        if (oldValue != 0) WriteItimerspec(oldValue, t);
        Arm(t, value, interval, absolute: (flags & TIMER_ABSTIME) != 0);
        return 0;
    }

    private long SysTimerGettime(int id, ulong value)
    {
        if (!_posixTimers.TryGetValue(id, out var t)) return -Errno.EINVAL;
        WriteItimerspec(value, t);
        return 0;
    }

    private long SysTimerGetoverrun(int id) =>
        _posixTimers.TryGetValue(id, out var t) ? t.Overrun : -Errno.EINVAL;

    private long SysTimerDelete(int id)
    {
        if (!_posixTimers.Remove(id, out var t)) return -Errno.EINVAL;
        // Its queued signal goes with it, as Linux frees the timer's sigqueue entry.
        foreach (var task in Tasks) RemoveTimerSignal(task.Signals.Pending, t);
        RemoveTimerSignal(Signals.Pending, t);
        RearmHostTimer();
        return 0;
    }

    private static void RemoveTimerSignal(PendingSignals pending, GuestTimer t)
    {
        int i = pending.IndexOf(t.Signal, q => q.Code == SigInfo.SI_TIMER && (int)(uint)q.Word16 == t.Id);
        if (i >= 0) pending.Take(t.Signal); // standard signals hold one instance; RT ones: the first is this timer's
    }

    private long? ReadTimespec(ulong addr)
    {
        long s = (long)Memory.ReadU64(addr), ns = (long)Memory.ReadU64(addr + 8);
        if (s < 0 || ns < 0 || ns >= NsPerSec) return null;
        return s > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 4 : s * NsPerSec + ns;
    }

    private void WriteItimerspec(ulong addr, GuestTimer t)
    {
        long left = Remaining(t);
        if (t.Armed && left <= 0) left = 1;
        WriteTimespec(addr, t.IntervalNs);
        WriteTimespec(addr + 16, left);
    }

    // ---- firing ----------------------------------------------------------------------------------------------

    private long TimerNow(GuestTimer t) => t.CpuClock ? CpuNs : Clock.MonotonicNs;

    private long Remaining(GuestTimer t) => t.Armed ? Math.Max(0, t.ExpiryNs - TimerNow(t)) : 0;

    /// <summary>Arms <paramref name="t"/> to fire after <paramref name="valueNs"/> (or at it, on the timer's own
    /// clock, when absolute), then every <paramref name="intervalNs"/>; a zero value disarms it.</summary>
    private void Arm(GuestTimer t, long valueNs, long intervalNs, bool absolute)
    {
        t.IntervalNs = valueNs == 0 ? 0 : intervalNs;
        t.Overrun = 0;
        if (valueNs == 0)
        {
            t.ExpiryNs = 0;
        }
        else
        {
            long now = TimerNow(t);
            long at = !absolute ? (valueNs > long.MaxValue - now ? long.MaxValue / 2 : now + valueNs)
                : t.ClockId is CLOCK_REALTIME ? now + (valueNs - GuestClock.RealtimeNs)
                : valueNs;
            t.ExpiryNs = Math.Max(1, at);
        }
        ExpireTimers();
    }

    /// <summary>Fires every due timer (queueing its signal), re-arms periodic ones and sets the host timer for the next.</summary>
    private void ExpireTimers()
    {
        _timerCheckDue = false;
        long mono = Clock.MonotonicNs;
        long? cpu = null;
        foreach (var t in AllTimers)
        {
            if (!t.Armed) continue;
            long now = t.CpuClock ? cpu ??= CpuNs : mono;
            if (now < t.ExpiryNs) continue;
            int missed = 0;
            if (t.IntervalNs > 0)
            {
                long periods = (now - t.ExpiryNs) / t.IntervalNs;
                missed = (int)Math.Min(periods, int.MaxValue);
                t.ExpiryNs += (periods + 1) * t.IntervalNs;
            }
            else
            {
                t.ExpiryNs = 0;
            }
            Fire(t, missed);
        }
        RearmHostTimer();
    }

    private void Fire(GuestTimer t, int missed)
    {
        if (t.IsItimer)
        {
            SendSignal(SigInfo.Kernel(t.Signal), toTask: false);
            return;
        }
        if (t.Notify == GuestTimer.SIGEV_NONE) return;
        // SIGEV_THREAD_ID to its thread (one that has exited: to the process, as Linux falls back to the group)
        GuestTask? target = t.Notify == GuestTimer.SIGEV_THREAD_ID ? FindTask(t.Tid) : null;
        PendingSignals pending = target != null ? target.Signals.Pending : Signals.Pending;
        int queued = pending.IndexOf(t.Signal, q => q.Code == SigInfo.SI_TIMER && (int)(uint)q.Word16 == t.Id);
        if (queued >= 0)
        {
            // Its signal is still pending: the expiry counts as an overrun, reported with that signal.
            t.Overrun = (int)Math.Min((long)t.Overrun + 1 + missed, int.MaxValue);
            var info = SigInfo.Timer(t.Signal, t.Id, t.Overrun, t.Value);
            pending.Replace(queued, info);
            return;
        }
        t.Overrun = missed;
        SendSignal(SigInfo.Timer(t.Signal, t.Id, missed, t.Value), target);
    }

    /// <summary>Sets the host timer to wake the program at the nearest expiry (a CPU-time timer: no earlier than its
    /// remaining CPU time from now, and it looks again then).</summary>
    private void RearmHostTimer()
    {
        long mono = Clock.MonotonicNs, best = long.MaxValue;
        long? cpu = null;
        _nextMonotonicDue = long.MaxValue;
        foreach (var t in AllTimers)
        {
            if (!t.Armed) continue;
            long now = t.CpuClock ? cpu ??= CpuNs : mono;
            best = Math.Min(best, Math.Max(0, t.ExpiryNs - now));
            if (!t.CpuClock) _nextMonotonicDue = Math.Min(_nextMonotonicDue, t.ExpiryNs);
        }
        _timersArmed = best != long.MaxValue;
        if (!_timersArmed)
        {
            _hostTimer?.Change(Timeout.Infinite, Timeout.Infinite);
            return;
        }
        _hostTimer ??= new Timer(_ => WakeForSignal());
        long ms = Math.Min(best / 1_000_000 + (best % 1_000_000 != 0 ? 1 : 0), int.MaxValue - 1);
        _hostTimer.Change(ms, Timeout.Infinite);
    }

    /// <summary>Stops the host timer for good (the program ended).</summary>
    internal void StopTimers()
    {
        _hostTimer?.Dispose();
        _hostTimer = null;
    }
}
