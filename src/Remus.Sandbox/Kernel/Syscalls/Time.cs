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

    private long? ClockNow(int clock) => clock switch
    {
        CLOCK_REALTIME or CLOCK_REALTIME_COARSE or CLOCK_REALTIME_ALARM or CLOCK_TAI => GuestClock.RealtimeNs,
        CLOCK_MONOTONIC or CLOCK_MONOTONIC_RAW or CLOCK_MONOTONIC_COARSE or CLOCK_BOOTTIME or CLOCK_BOOTTIME_ALARM => Clock.MonotonicNs,
        CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID => GuestClock.HostMonotonicNs - _startNs,
        _ => null,
    };

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
        if (ClockNow(clock) is not { } now || clock is CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID) return -Errno.EINVAL;
        long sec = (long)Memory.ReadU64(req), nsec = (long)Memory.ReadU64(req + 8);
        if (sec < 0 || nsec < 0 || nsec >= NsPerSec) return -Errno.EINVAL;
        long request = sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + nsec;

        // Deadlines are kept on the monotonic clock (absolute realtime sleeps are converted once).
        long deadline = _restartedDeadline ?? ((flags & TIMER_ABSTIME) != 0 ? Clock.MonotonicNs + (request - now) : MonotonicDeadline(request));
        SleepUntil(deadline, rip);
        return 0;
    }
}
