using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>timerfd_create, timerfd_settime, timerfd_gettime.</summary>
internal sealed partial class SandboxKernel
{
    private const int TFD_TIMER_ABSTIME = 1, TFD_TIMER_CANCEL_ON_SET = 2;

    private long SysTimerFdCreate(int clockId, int flags)
    {
        if ((flags & ~(O_CLOEXEC | O_NONBLOCK)) != 0) return -Errno.EINVAL;
        if (clockId is not (CLOCK_REALTIME or CLOCK_MONOTONIC or CLOCK_BOOTTIME or CLOCK_REALTIME_ALARM or CLOCK_BOOTTIME_ALARM))
            return -Errno.EINVAL;
        if (clockId is CLOCK_REALTIME_ALARM or CLOCK_BOOTTIME_ALARM) return -Errno.EPERM; // needs CAP_WAKE_ALARM
        var f = new TimerFdFile(Clock, clockId) { Flags = O_RDWR | (flags & O_NONBLOCK) };
        return Fds.Add(f, (flags & O_CLOEXEC) != 0);
    }

    /// <summary>A timespec as ns (saturating), or null when Linux's timespec64_valid refuses it.</summary>
    private long? ReadTimespecNs(ulong addr)
    {
        long sec = (long)Memory.ReadU64(addr), nsec = (long)Memory.ReadU64(addr + 8);
        if (sec < 0 || nsec < 0 || nsec >= NsPerSec) return null;
        return sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + nsec;
    }

    private void WriteItimerspec(ulong addr, (long ValueNs, long IntervalNs) t)
    {
        WriteTimespec(addr, t.IntervalNs);
        WriteTimespec(addr + 16, t.ValueNs);
    }

    private long SysTimerFdSetTime(int fd, int flags, ulong newValue, ulong oldValue)
    {
        long? interval = ReadTimespecNs(newValue), value = ReadTimespecNs(newValue + 16);
        if ((flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) != 0 || interval == null || value == null) return -Errno.EINVAL;
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is not TimerFdFile t) return -Errno.EINVAL;
        var old = t.Get();
        t.Set(value.Value, interval.Value, (flags & TFD_TIMER_ABSTIME) != 0);
        if (oldValue != 0) WriteItimerspec(oldValue, old);
        return 0;
    }

    private long SysTimerFdGetTime(int fd, ulong current)
    {
        var f = Fds.Get(fd);
        if (f == null) return -Errno.EBADF;
        if (f is not TimerFdFile t) return -Errno.EINVAL;
        WriteItimerspec(current, t.Get());
        return 0;
    }
}
