namespace Remus.Sandbox.Kernel;

/// <summary>clock_gettime, clock_getres, gettimeofday, time, nanosleep, clock_nanosleep.</summary>
internal sealed partial class SandboxKernel
{
    private const int CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3,
        CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7,
        CLOCK_REALTIME_ALARM = 8, CLOCK_BOOTTIME_ALARM = 9, CLOCK_TAI = 11;
    private const int TIMER_ABSTIME = 1;
    private const long NsPerSec = 1_000_000_000;

    private long _startNs = GuestClock.HostMonotonicNs;

    /// <summary>The CPU time the program has used (ns): its vCPU's, plus what it used before a restore or migration.</summary>
    private long CpuNs => (Vcpu?.CpuTimeNs ?? 0) + Clock.CpuOffsetNs;

    private long? ClockNow(int clock) => clock switch
    {
        CLOCK_REALTIME or CLOCK_REALTIME_COARSE or CLOCK_REALTIME_ALARM or CLOCK_TAI => GuestClock.RealtimeNs,
        CLOCK_MONOTONIC or CLOCK_MONOTONIC_RAW or CLOCK_MONOTONIC_COARSE or CLOCK_BOOTTIME or CLOCK_BOOTTIME_ALARM => Clock.MonotonicNs,
        CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID => CpuNs,
        < 0 => CpuClockOf(clock),
        _ => null,
    };

    /// <summary>
    /// The clocks of clock_getcpuclockid and pthread_getcpuclockid: ~pid &lt;&lt; 3 | (thread ? 4 : 0) | type. The
    /// program is the only process and thread (pid 0 means itself); every type (PROF, VIRT, SCHED) reads its CPU time.
    /// </summary>
    private long? CpuClockOf(int clock)
    {
        if ((clock & 3) == 3) return null;
        int pid = ~(clock >> 3);
        return pid is 0 or Pid ? CpuNs : null;
    }

    private void WriteTimespec(ulong addr, long ns)
    {
        Memory.WriteU64(addr, (ulong)(ns / NsPerSec));
        Memory.WriteU64(addr + 8, (ulong)(ns % NsPerSec));
    }

    private long SysClockGetTime(int clock, ulong tp)
    {
        if (ClockNow(clock) is not { } ns) return -Errno.EINVAL;
        WriteTimespec(tp, ns);
        return 0;
    }

    private long SysClockGetRes(int clock, ulong res)
    {
        if (ClockNow(clock) == null) return -Errno.EINVAL;
        if (res != 0) WriteTimespec(res, clock is CLOCK_REALTIME_COARSE or CLOCK_MONOTONIC_COARSE ? 4_000_000 : 1);
        return 0;
    }

    private long SysGetTimeOfDay(ulong tv, ulong tz)
    {
        long ns = GuestClock.RealtimeNs;
        if (tv != 0)
        {
            Memory.WriteU64(tv, (ulong)(ns / NsPerSec));
            Memory.WriteU64(tv + 8, (ulong)(ns % NsPerSec / 1000));
        }
        if (tz != 0) Memory.WriteU64(tz, 0);
        return 0;
    }

    private long SysTime(ulong t)
    {
        long s = GuestClock.RealtimeNs / NsPerSec;
        if (t != 0) Memory.WriteU64(t, (ulong)s);
        return s;
    }

    private long SysNanosleep(int clock, int flags, ulong req, ulong rem, ulong rip)
    {
        if (ClockNow(clock) is not { } now || clock is CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID or < 0) return -Errno.EINVAL;
        long sec = (long)Memory.ReadU64(req), nsec = (long)Memory.ReadU64(req + 8);
        if (sec < 0 || nsec < 0 || nsec >= NsPerSec) return -Errno.EINVAL;
        long request = sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + nsec;

        // Deadlines are kept on the monotonic clock (absolute realtime sleeps are converted once).
        long deadline = _restartedDeadline ?? ((flags & TIMER_ABSTIME) != 0 ? Clock.MonotonicNs + (request - now) : MonotonicDeadline(request));
        try
        {
            SleepUntil(deadline, rip);
        }
        catch (SignalInterruptException) when ((flags & TIMER_ABSTIME) != 0)
        {
            throw new SignalInterruptException(ERESTARTNOHAND); // an absolute sleep is simply called again
        }
        catch (SignalInterruptException)
        {
            InterruptedSleep(deadline, rem);
            throw;
        }
        return 0;
    }
}
