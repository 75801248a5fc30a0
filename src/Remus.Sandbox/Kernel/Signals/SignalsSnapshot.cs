using Remus.Sandbox.Kernel.Signals;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Signal state in a checkpoint. Where version 2 had the blocked mask, pending set and 24-byte stack_t, version 3
/// keeps the same fields (older readers of the layout stay in step); after the resource limits it adds what
/// delivery needs: the thread's and the process's queued siginfo, alternate stack flags, sigsuspend's saved mask,
/// the last fault's trap details, the restart block, and every timer with its expiry (on the guest's monotonic or
/// CPU-time clock, which the checkpoint carries, so a timer keeps its remaining time across hosts).
/// </summary>
internal sealed partial class SandboxKernel
{
    private void SaveSignalsV2(BinaryWriter w)
    {
        w.Write(Task.Blocked);
        w.Write(Task.Pending.Set | Signals.Pending.Set);
        w.Write(Task.AltSp);
        w.Write((ulong)(uint)Task.AltStackFlags(0));
        w.Write(Task.AltSize);
    }

    private void LoadSignalsV2(BinaryReader r)
    {
        Task.Blocked = r.ReadUInt64();
        ulong pending = r.ReadUInt64();
        Task.AltSp = r.ReadUInt64();
        ulong flags = r.ReadUInt64();
        Task.AltSize = r.ReadUInt64();
        Task.AltFlags = (uint)flags & TaskSignals.SS_AUTODISARM;
        if ((flags & TaskSignals.SS_DISABLE) != 0 || Task.AltSize == 0) Task.DisarmAltStack();
        // Version 2 kept a set without siginfo: each pending signal comes back as the kernel's own.
        Task.Pending.Clear();
        Signals.Pending.Clear();
        for (int sig = 1; sig <= SignalState.NSig; sig++)
            if ((pending & PendingSignals.Bit(sig)) != 0) Signals.Pending.Add(SigInfo.Kernel(sig));
    }

    private void SaveSignals(BinaryWriter w)
    {
        Task.Save(w);
        Signals.Pending.Save(w);
        SaveRestartBlock(w);
        w.Write(_itimers.Length);
        foreach (var t in _itimers) t.Save(w);
        w.Write(_posixTimers.Count);
        foreach (var t in _posixTimers.Values) t.Save(w);
    }

    private void LoadSignals(BinaryReader r)
    {
        Task.Load(r);
        Signals.Pending.Load(r);
        LoadRestartBlock(r);
        int n = r.ReadInt32();
        if (n != _itimers.Length) throw new SandboxException("corrupt kernel state in the checkpoint (interval timers)");
        for (int i = 0; i < n; i++)
        {
            var t = GuestTimer.Load(r);
            _itimers[i].ExpiryNs = t.ExpiryNs;
            _itimers[i].IntervalNs = t.IntervalNs;
        }
        n = r.ReadInt32();
        if (n < 0 || n > MaxPosixTimers) throw new SandboxException("corrupt kernel state in the checkpoint (timers)");
        _posixTimers.Clear();
        for (int i = 0; i < n; i++)
        {
            var t = GuestTimer.Load(r);
            _posixTimers[t.Id] = t;
        }
        RearmHostTimer();
    }
}
