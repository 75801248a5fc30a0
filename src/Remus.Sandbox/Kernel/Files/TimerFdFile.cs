using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// timerfd (fs/timerfd.c): a timer on CLOCK_REALTIME, CLOCK_MONOTONIC or CLOCK_BOOTTIME whose expirations are
/// counted; read returns the count (waiting for the first) and resets it. As on Linux, an expiry counts one and
/// wakes the readers once; a periodic timer then stays expired, without further wake-ups, until a read or gettime
/// forwards it past now, adding the periods missed meanwhile (hrtimer_forward_now). Expiries are noticed when looked
/// at (read, poll, gettime, a waiter waking at <see cref="NextEventNs"/>). The expiry is kept on the timer's clock
/// (the guest's monotonic clock, which checkpoints carry, or real time), so an armed timer keeps its remaining time
/// through save/restore and migration.
/// </summary>
internal sealed class TimerFdFile(GuestClock clock, int clockId) : FileDescription
{
    private const int CLOCK_REALTIME = 0, CLOCK_REALTIME_ALARM = 8;

    private readonly WaitQueue _queue = new();

    public int ClockId { get; } = clockId;

    /// <summary>The expiry on the timer's clock (ns); 0 when disarmed (or a one-shot that fired).</summary>
    public long ExpiryNs { get; set; }
    public long IntervalNs { get; set; }

    /// <summary>Expirations not yet read.</summary>
    public ulong Ticks { get; set; }

    /// <summary>A periodic timer that fired and was not forwarded since (no further expiries count until it is).</summary>
    public bool Expired { get; set; }

    private bool Realtime => ClockId is CLOCK_REALTIME or CLOCK_REALTIME_ALARM;
    private long Now => Realtime ? GuestClock.RealtimeNs : clock.MonotonicNs;

    public override WaitQueue Queue => _queue;

    /// <summary>The timer's own expiry (Linux's timerfd_tmrproc), when its time has come.</summary>
    private void Advance()
    {
        if (ExpiryNs == 0 || Expired || Now < ExpiryNs) return;
        Ticks++;
        if (IntervalNs > 0) Expired = true;
        else ExpiryNs = 0;
        _queue.Notify(PollEvents.Readable);
    }

    /// <summary>Moves an expired periodic timer past now, counting the periods it missed (hrtimer_forward_now - 1).</summary>
    private void Forward()
    {
        if (!Expired) return;
        long now = Now;
        long n = now < ExpiryNs ? 0 : (now - ExpiryNs) / IntervalNs + 1;
        if (n > 0)
        {
            Ticks += (ulong)(n - 1);
            ExpiryNs += n * IntervalNs;
        }
        Expired = false;
    }

    public override long NextEventNs
    {
        get
        {
            if (ExpiryNs == 0 || Expired) return long.MaxValue;
            if (!Realtime) return ExpiryNs;
            long left = ExpiryNs - GuestClock.RealtimeNs;
            return clock.MonotonicNs + Math.Max(left, 0);
        }
    }

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (buffer.Length < 8) return -Errno.EINVAL;
        Advance();
        if (Ticks == 0) return -Errno.EAGAIN;
        Forward();
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, Ticks);
        Ticks = 0;
        return 8;
    }

    public override long Write(ReadOnlySpan<byte> data) => -Errno.EINVAL;

    public override PollEvents Readiness()
    {
        Advance();
        return Ticks > 0 ? PollEvents.Readable : PollEvents.None;
    }

    /// <summary>The time left to the next expiry (0 when disarmed or fired) and the interval.</summary>
    public (long ValueNs, long IntervalNs) Get()
    {
        Advance();
        Forward();
        return (ExpiryNs == 0 ? 0 : Math.Max(ExpiryNs - Now, 0), IntervalNs);
    }

    /// <summary>Arms (value &gt; 0: relative, or absolute on the timer's clock) or disarms (value 0); unread expirations go.</summary>
    public void Set(long valueNs, long intervalNs, bool absolute)
    {
        Ticks = 0;
        Expired = false;
        IntervalNs = intervalNs;
        if (valueNs == 0) ExpiryNs = 0;
        else
        {
            long now = Now;
            ExpiryNs = absolute ? Math.Max(valueNs, 1) : (valueNs > long.MaxValue - now ? long.MaxValue : now + valueNs);
        }
        // Waiters look again (a blocked read now has another expiry to wait for).
        _queue.Notify(PollEvents.None);
    }

    public override long Stat(Span<byte> st) => AnonInode.Stat(st);
}
