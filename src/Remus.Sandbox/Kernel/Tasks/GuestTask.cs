using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel.Tasks;

/// <summary>
/// One thread of the program (Linux's task_struct, the part this kernel keeps): its tid, its vCPU, its signal
/// state, clear_child_tid and the robust list head, and the state of the system call it is in or will restart (a
/// timed wait's deadline, a restart block, a write's progress). The process-wide state (files, memory, signal
/// dispositions) stays in <see cref="SandboxKernel"/>. Touched only under the kernel lock, or while the domain is paused.
/// </summary>
internal sealed class GuestTask(SandboxKernel kernel, int tid)
{
    public SandboxKernel Kernel { get; } = kernel;
    public int Tid { get; } = tid;

    /// <summary>The vCPU this thread runs on (set on its own host thread once attached).</summary>
    public IVcpu? Vcpu { get; set; }

    public TaskSignals Signals { get; set; } = new();

    /// <summary>set_tid_address / CLONE_CHILD_CLEARTID: zeroed and futex-woken when the thread exits.</summary>
    public ulong ClearChildTid;

    /// <summary>The page this thread's last demand fault backed (Kernel/PageFaults.cs), or ulong.MaxValue.</summary>
    public ulong LastDemandPage = ulong.MaxValue;

    /// <summary>set_robust_list: accepted and kept (a dying thread's robust futexes are not walked).</summary>
    public ulong RobustList, RobustListLength;

    /// <summary>The thread has exited (a leader that exited before the others stays listed until the process ends).</summary>
    public bool Exited;

    // What clone asked the new thread to start with (applied to its vCPU once attached).
    public ulong CloneFlags, CloneStack, CloneTls;

    // The state of the call being served or restarted (see Deadlines.cs, RestartBlock.cs, WaitingIo.cs).
    public (ulong Rip, long DeadlineNs)? InterruptedWait;
    public long? RestartedDeadline;
    public SandboxKernel.RestartBlock? RestartBlock;
    public ulong CallRip;
    public (ulong Rip, long Done)? InterruptedTransfer;
    public long RestartedDone;

    public override string ToString() => $"thread {Tid}";
}
