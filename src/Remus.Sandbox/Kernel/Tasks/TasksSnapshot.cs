using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Kernel.Tasks;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The threads in a checkpoint (kernel state version 4, after everything version 3 has): the next tid, membarrier's
/// registration, then every thread the checkpoint carries — the leader first, then each live thread by tid, in the
/// order of the VCPU_STATE records (vCPU id n = the n-th thread here) — with its tid, whether it has exited (a
/// leader may have), clear_child_tid, robust list, signal state, and the state of the call it will restart
/// (interrupted wait's deadline, restart block, a write's progress); then the thread of each SIGEV_THREAD_ID timer.
/// The leader's part is also where version 3 kept it, for readers of the single-thread layout. Futex waiters are not
/// listed: a paused waiter's call restarts from its syscall instruction, and waits again on restore.
/// </summary>
internal sealed partial class SandboxKernel
{
    /// <summary>The threads a checkpoint carries, in the order of their vCPU states.</summary>
    public List<GuestTask> CheckpointedTasks()
    {
        var list = new List<GuestTask> { Leader };
        foreach (var t in _tasks) if (t != Leader && !t.Exited) list.Add(t);
        return list;
    }

    private void SaveTasks(BinaryWriter w)
    {
        w.Write(_nextTid);
        w.Write(_membarrierRegistered);
        var list = CheckpointedTasks();
        w.Write(list.Count);
        foreach (var t in list)
        {
            w.Write(t.Tid);
            w.Write(t.Exited);
            w.Write(t.ClearChildTid);
            w.Write(t.RobustList);
            w.Write(t.RobustListLength);
            t.Signals.Save(w);
            w.Write(t.InterruptedWait.HasValue);
            var iw = t.InterruptedWait.GetValueOrDefault();
            w.Write(iw.Rip); w.Write(iw.DeadlineNs);
            w.Write(t.RestartBlock.HasValue);
            var b = t.RestartBlock.GetValueOrDefault();
            w.Write((int)b.Kind); w.Write(b.DeadlineNs); w.Write(b.Address); w.Write(b.Value);
            w.Write(t.InterruptedTransfer.HasValue);
            var tr = t.InterruptedTransfer.GetValueOrDefault();
            w.Write(tr.Rip); w.Write(tr.Done);
        }
        var threadTimers = _posixTimers.Values.Where(t => t.Notify == GuestTimer.SIGEV_THREAD_ID).ToList();
        w.Write(threadTimers.Count);
        foreach (var t in threadTimers) { w.Write(t.Id); w.Write(t.Tid); }
    }

    /// <summary>Rebuilds the threads of a checkpoint (the leader is this kernel's own); the domain then gives each
    /// other one a vCPU and a host thread.</summary>
    private void LoadTasks(BinaryReader r)
    {
        _nextTid = r.ReadInt32();
        _membarrierRegistered = r.ReadBoolean();
        int n = r.ReadInt32();
        if (n < 1 || n > 1 << 16) throw new SandboxException("corrupt kernel state in the checkpoint (threads)");
        var leader = Leader;
        var before = _tasks.ToList(); // a backup loads checkpoint after checkpoint: a thread it has keeps its object
        _tasks.Clear();
        for (int i = 0; i < n; i++)
        {
            int tid = r.ReadInt32();
            if (tid <= 0 || tid >= _nextTid || (i == 0) != (tid == Pid) || _tasks.Any(x => x.Tid == tid))
                throw new SandboxException("corrupt kernel state in the checkpoint (thread ids)");
            var t = i == 0 ? leader : before.FirstOrDefault(x => x.Tid == tid && x != leader) ?? new GuestTask(this, tid);
            t.Exited = r.ReadBoolean();
            t.ClearChildTid = r.ReadUInt64();
            t.RobustList = r.ReadUInt64();
            t.RobustListLength = r.ReadUInt64();
            t.Signals = new TaskSignals();
            t.Signals.Load(r);
            bool hasWait = r.ReadBoolean();
            (ulong, long) iw = (r.ReadUInt64(), r.ReadInt64());
            t.InterruptedWait = hasWait ? iw : null;
            bool hasBlock = r.ReadBoolean();
            var b = new RestartBlock((RestartKind)r.ReadInt32(), r.ReadInt64(), r.ReadUInt64(), r.ReadUInt32());
            t.RestartBlock = hasBlock ? b : null;
            bool hasTransfer = r.ReadBoolean();
            (ulong, long) tr = (r.ReadUInt64(), r.ReadInt64());
            t.InterruptedTransfer = hasTransfer ? tr : null;
            _tasks.Add(t);
        }
        _taskSnapshot = [.. _tasks];
        int timers = r.ReadInt32();
        for (int i = 0; i < timers; i++)
        {
            int id = r.ReadInt32(), tid = r.ReadInt32();
            if (_posixTimers.TryGetValue(id, out var timer)) timer.Tid = tid;
        }
    }
}
