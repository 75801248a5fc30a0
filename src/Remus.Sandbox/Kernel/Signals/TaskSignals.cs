namespace Remus.Sandbox.Kernel.Signals;

/// <summary>
/// The signal state of one thread (Linux keeps it in task_struct): its blocked mask, the signals sent to it alone
/// (tkill, tgkill, faults, SIGEV_THREAD_ID timers), its alternate stack, and the mask to put back after
/// rt_sigsuspend. The process-wide part (dispositions, signals sent to the process) is <see cref="SignalState"/>.
/// Each thread of the program owns one (<see cref="Remus.Sandbox.Kernel.Tasks.GuestTask.Signals"/>).
/// </summary>
internal sealed class TaskSignals
{
    public const int SS_ONSTACK = 1, SS_DISABLE = 2;
    public const uint SS_AUTODISARM = 1u << 31;

    public ulong Blocked { get; set; }

    public PendingSignals Pending { get; } = new();

    /// <summary>sigaltstack: base, size (0: none) and flags (SS_AUTODISARM) as the program set them.</summary>
    public ulong AltSp { get; set; }
    public ulong AltSize { get; set; }
    public uint AltFlags { get; set; }

    /// <summary>rt_sigsuspend's caller mask, restored once a handler's frame is built (null: none).</summary>
    public ulong? SavedMask { get; set; }

    /// <summary>The last fault's vector, error code and address (page faults), as the frame's sigcontext reports them.</summary>
    public ulong Trapno { get; set; }
    public ulong ErrorCode { get; set; }
    public ulong Cr2 { get; set; }

    /// <summary>Whether <paramref name="sp"/> lies on the alternate stack (Linux's on_sig_stack).</summary>
    public bool OnAltStack(ulong sp) =>
        (AltFlags & SS_AUTODISARM) == 0 && sp > AltSp && sp - AltSp <= AltSize;

    /// <summary>Linux's sas_ss_flags: SS_DISABLE with no stack, SS_ONSTACK while on it, else 0.</summary>
    public int AltStackFlags(ulong sp) => AltSize == 0 ? SS_DISABLE : OnAltStack(sp) ? SS_ONSTACK : 0;

    public void DisarmAltStack()
    {
        AltSp = 0;
        AltSize = 0;
        AltFlags = SS_DISABLE;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(Blocked);
        Pending.Save(w);
        w.Write(AltSp); w.Write(AltSize); w.Write(AltFlags);
        w.Write(SavedMask.HasValue);
        w.Write(SavedMask ?? 0);
        w.Write(Trapno); w.Write(ErrorCode); w.Write(Cr2);
    }

    public void Load(BinaryReader r)
    {
        Blocked = r.ReadUInt64();
        Pending.Load(r);
        AltSp = r.ReadUInt64(); AltSize = r.ReadUInt64(); AltFlags = r.ReadUInt32();
        bool saved = r.ReadBoolean();
        ulong mask = r.ReadUInt64();
        SavedMask = saved ? mask : null;
        Trapno = r.ReadUInt64(); ErrorCode = r.ReadUInt64(); Cr2 = r.ReadUInt64();
    }
}
