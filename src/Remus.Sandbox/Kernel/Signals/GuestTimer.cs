namespace Remus.Sandbox.Kernel.Signals;

/// <summary>
/// One timer of the program: an interval timer (setitimer/alarm: ITIMER_REAL on the monotonic clock, ITIMER_VIRTUAL
/// and ITIMER_PROF on its CPU time) or a POSIX timer (timer_create). Expiry times are on the guest's monotonic clock
/// or its CPU-time clock, both of which checkpoints carry, so a restored or migrated timer keeps its remaining time.
/// </summary>
internal sealed class GuestTimer
{
    public const int SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD = 2, SIGEV_THREAD_ID = 4;

    /// <summary>timer_create's id, or -1 - which for the interval timers.</summary>
    public int Id { get; init; }
    public bool IsItimer => Id < 0;

    /// <summary>Counts the program's CPU time instead of the monotonic clock.</summary>
    public bool CpuClock { get; init; }

    /// <summary>The clock id the program gave (timer_create), for absolute settings.</summary>
    public int ClockId { get; init; }

    /// <summary>When it next fires (ns on its clock); 0: disarmed.</summary>
    public long ExpiryNs { get; set; }
    public long IntervalNs { get; set; }

    public int Signal { get; init; }
    public int Notify { get; init; }
    public ulong Value { get; init; }

    /// <summary>SIGEV_THREAD_ID: the thread its signal goes to (kept in checkpoints by TasksSnapshot.cs).</summary>
    public int Tid { get; set; }

    /// <summary>timer_getoverrun: the expiries lost while its signal was pending.</summary>
    public int Overrun { get; set; }

    public bool Armed => ExpiryNs != 0;

    public void Save(BinaryWriter w)
    {
        w.Write(Id); w.Write(CpuClock); w.Write(ClockId); w.Write(ExpiryNs); w.Write(IntervalNs);
        w.Write(Signal); w.Write(Notify); w.Write(Value); w.Write(Overrun);
    }

    public static GuestTimer Load(BinaryReader r)
    {
        int id = r.ReadInt32();
        bool cpu = r.ReadBoolean();
        int clock = r.ReadInt32();
        long expiry = r.ReadInt64(), interval = r.ReadInt64();
        int signal = r.ReadInt32(), notify = r.ReadInt32();
        ulong value = r.ReadUInt64();
        int overrun = r.ReadInt32();
        return new GuestTimer
        {
            Id = id, CpuClock = cpu, ClockId = clock, ExpiryNs = expiry, IntervalNs = interval,
            Signal = signal, Notify = notify, Value = value, Overrun = overrun,
        };
    }
}
