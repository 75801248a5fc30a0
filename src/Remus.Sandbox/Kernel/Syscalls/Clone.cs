using Remus.Sandbox.Kernel.Tasks;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// clone for threads (the flags glibc, musl, Rust std and Go use), exit of one thread, set_tid_address. A new
/// thread gets a vCPU of its own (<see cref="IVcpu.PrepareSibling"/>), made on the parent's host thread and attached
/// on the child's; it starts with the parent's registers but rax 0, the new stack and, with CLONE_SETTLS, the new FS
/// base. A clone that would make a process (no CLONE_VM, or sharing less than a thread does) is ENOSYS, logged:
/// fork and exec are not offered.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const ulong CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
        CLONE_THREAD = 0x10000, CLONE_SYSVSEM = 0x40000, CLONE_SETTLS = 0x80000, CLONE_PARENT_SETTID = 0x100000,
        CLONE_CHILD_CLEARTID = 0x200000, CLONE_DETACHED = 0x400000, CLONE_UNTRACED = 0x800000,
        CLONE_CHILD_SETTID = 0x1000000, CSIGNAL = 0xFF;
    private const ulong ThreadClone = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
    private const ulong ThreadCloneAccepted = ThreadClone | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
        CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_DETACHED | CLONE_UNTRACED | CSIGNAL;

    /// <summary>Thrown by exit when other threads remain: the calling thread ends, the process goes on.</summary>
    internal sealed class ThreadExitException : Exception;

    private long SysClone(ulong flags, ulong stack, ulong parentTid, ulong childTid, ulong tls)
    {
        if ((flags & ThreadClone) != ThreadClone || (flags & ~ThreadCloneAccepted) != 0)
        {
            if (_loggedUnsupported.Add(-(long)flags - 1000))
                Log?.Invoke($"clone with flags 0x{flags:x}: only threads (CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD) are offered, returning ENOSYS");
            return -Errno.ENOSYS;
        }
        var parent = Current;
        if (parent.Vcpu is not { } vcpu || LiveTasks >= MaxThreads(vcpu)) return -Errno.EAGAIN;
        IVcpuSeed seed;
        try
        {
            seed = vcpu.PrepareSibling();
        }
        catch (Exception e) when (e is NotSupportedException or SandboxException)
        {
            if (_loggedUnsupported.Add(-56000)) Log?.Invoke($"clone: cannot make a vCPU for a new thread ({e.Message}): returning EAGAIN");
            return -Errno.EAGAIN;
        }
        int tid = _nextTid++;
        var child = new GuestTask(this, tid) { CloneFlags = flags, CloneStack = stack, CloneTls = tls };
        child.Signals.Blocked = parent.Signals.Blocked;
        child.Signals.DisarmAltStack(); // CLONE_VM: the new thread has no alternate stack
        if ((flags & CLONE_CHILD_CLEARTID) != 0) child.ClearChildTid = childTid;
        // As copy_process and schedule_tail: the ids are written before the child runs; a bad pointer is ignored.
        if ((flags & CLONE_PARENT_SETTID) != 0) TryWriteU32(parentTid, (uint)tid);
        if ((flags & CLONE_CHILD_SETTID) != 0) TryWriteU32(childTid, (uint)tid);
        AddTask(child);
        ThreadCreated?.Invoke(child, seed);
        return tid;
    }

    /// <summary>
    /// The domain's bound on live threads: its config's <c>max_threads</c>, never more than the platform's vCPUs. A
    /// clone past it is EAGAIN, as Linux's past RLIMIT_NPROC (or threads-max): the program is told, the VMM stays up.
    /// </summary>
    private int MaxThreads(IVcpu vcpu) => Math.Min(vcpu.MaxVcpus, Spec.MaxThreads ?? int.MaxValue);

    /// <summary>Sets up a new thread's registers from what clone asked (on its host thread, its vCPU attached).</summary>
    public void StartTask(GuestTask task, IVcpu vcpu)
    {
        task.Vcpu = vcpu;
        BindThread(task);
        if (task.CloneFlags == 0) return; // restored from a checkpoint: the registers are the saved ones
        ref var r = ref vcpu.Regs;
        r.Rax = 0;
        r.OrigRax = ulong.MaxValue;
        if (task.CloneStack != 0) r.Rsp = task.CloneStack;
        if ((task.CloneFlags & CLONE_SETTLS) != 0) r.FsBase = task.CloneTls;
        task.CloneFlags = 0;
    }

    /// <summary>exit: the calling thread ends; the last one ends the process with its status, as exit_group.</summary>
    private long SysExitThread(int status)
    {
        if (LiveTasks <= 1) return SysExit(status);
        var t = Current;
        t.Exited = true;
        ClearChildTid(t);
        throw new ThreadExitException();
    }

    /// <summary>A thread's exit (mm_release): 0 at its clear_child_tid, and one futex waiter there woken (pthread_join).</summary>
    private void ClearChildTid(GuestTask t)
    {
        if (t.ClearChildTid == 0 || !TryWriteU32(t.ClearChildTid, 0)) return;
        FutexWake(t.ClearChildTid, 1, FutexBitsetAll);
    }

    private long SysSetTidAddress(ulong addr)
    {
        Current.ClearChildTid = addr;
        return Current.Tid;
    }

    private bool TryWriteU32(ulong addr, uint value)
    {
        try
        {
            Memory.WriteU32(addr, value);
            return true;
        }
        catch (GuestFaultException)
        {
            return false;
        }
    }
}
