using System.Numerics;
using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Delivery, as Linux's arch_do_signal_or_restart and get_signal: whenever the program is about to run again (after
/// a system call, a fault, or a kick), each pending signal it does not block is taken, synchronous ones (faults)
/// first, then the lowest number, and acted on: ignored, stops the program, ends it (128+signal), or runs its
/// handler on a frame pushed on the stack (<see cref="SetupFrame"/>). Several handlers nest as on Linux. A system
/// call that a signal interrupted returns EINTR or restarts, by its restart code and SA_RESTART.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGFPE = 8, SIGSEGV = 11, SIGSYS = 31;
    private const ulong SynchronousSignals = (1UL << (SIGSEGV - 1)) | (1UL << (SIGBUS - 1)) | (1UL << (SIGILL - 1)) |
        (1UL << (SIGTRAP - 1)) | (1UL << (SIGFPE - 1)) | (1UL << (SIGSYS - 1));
    private const long NrRestartSyscall = 219;

    /// <summary>The signal state of the thread being served (<see cref="Current"/>); <see cref="Signals"/> is the process-wide part.</summary>
    public TaskSignals Task => Current.Signals;

    /// <summary>
    /// Acts on pending signals before the program runs again. <paramref name="afterSyscall"/>: rax holds the result
    /// of the call just served (a restart code is resolved here). Returns Exit when a signal ended the program
    /// (<see cref="ExitStatus"/>), Stop when one stopped it, else Return.
    /// </summary>
    internal SyscallOutcome DeliverSignals(ref UserRegs r, bool afterSyscall)
    {
        if (_timerCheckDue || (_timersArmed && Clock.MonotonicNs >= _nextMonotonicDue)) ExpireTimers();
        bool restart = afterSyscall && (long)r.OrigRax >= 0 && (long)r.Rax is -ERESTARTSYS or -ERESTARTNOINTR or -ERESTARTNOHAND or -ERESTART_RESTARTBLOCK;
        if (((Task.Pending.Set | Signals.Pending.Set) & ~Task.Blocked) == 0)
        {
            if (restart) RestartWithoutHandler(ref r);
            return SyscallOutcome.Return;
        }
        while (NextSignal(out var info) is var sig && sig != 0)
        {
            ulong handler = Signals.Handler(sig);
            if (sig != SIGKILL && handler == SIG_IGN) continue;
            if (sig == SIGKILL || handler == SIG_DFL)
            {
                if (sig != SIGKILL && SignalState.DefaultIgnores(sig)) continue;
                if (restart) RestartWithoutHandler(ref r);
                RestoreSavedMask();
                if (SignalState.DefaultStops(sig))
                {
                    StopSignal = sig;
                    return SyscallOutcome.Stop;
                }
                Exit(128 + sig);
                return SyscallOutcome.Exit;
            }
            if (restart)
            {
                RestartWithHandler(ref r, sig);
                restart = false;
            }
            if (!SetupFrame(ref r, sig, info)) ForceSigsegv(sig);
        }
        if (restart) RestartWithoutHandler(ref r);
        RestoreSavedMask();
        return SyscallOutcome.Return;
    }

    /// <summary>A fault of the program's own code: the signal is forced (unblocked, a SIG_IGN reset) and delivered.</summary>
    internal SyscallOutcome DeliverFault(ref UserRegs r, in VcpuExit fault)
    {
        int trap = fault.Trap >= 0 ? fault.Trap
            : fault.Signal == SIGSEGV && fault.Code is SigInfo.SEGV_MAPERR or SigInfo.SEGV_ACCERR ? 14
            : fault.Signal == SIGSEGV ? 13 : 0;
        Task.Trapno = (ulong)trap;
        Task.ErrorCode = fault.Trap >= 0 ? fault.ErrorCode : trap == 14 ? 4UL : 0;
        if (trap == 14) Task.Cr2 = fault.FaultAddress;
        ForceSignal(SigInfo.Fault(fault.Signal, fault.Code, fault.FaultAddress));
        return DeliverSignals(ref r, afterSyscall: false);
    }

    /// <summary>Linux's force_sig_info: the program cannot block or ignore it (a blocked or ignored one is reset to
    /// the default action, which ends the program).</summary>
    private void ForceSignal(in SigInfo info)
    {
        int sig = info.Signo;
        ulong bit = PendingSignals.Bit(sig);
        bool blocked = (Task.Blocked & bit) != 0;
        if (blocked || Signals.Handler(sig) == SIG_IGN)
        {
            Signals.SetHandler(sig, SIG_DFL);
            Task.Blocked &= ~bit;
        }
        Task.Pending.Add(info);
    }

    /// <summary>A frame could not be written (or read back): SIGSEGV, with the default action if it was SIGSEGV's own.</summary>
    private void ForceSigsegv(int sig)
    {
        if (sig == SIGSEGV) Signals.SetHandler(SIGSEGV, SIG_DFL);
        ForceSignal(SigInfo.Kernel(SIGSEGV));
    }

    /// <summary>Takes the next signal to act on: thread-directed before process-directed, synchronous first.</summary>
    private int NextSignal(out SigInfo info)
    {
        info = default;
        ulong ready = (Task.Pending.Set | Signals.Pending.Set) & ~Task.Blocked;
        if (ready == 0) return 0;
        ulong sync = ready & SynchronousSignals;
        int sig = BitOperations.TrailingZeroCount(sync != 0 ? sync : ready) + 1;
        info = Task.Pending.Contains(sig) ? Task.Pending.Take(sig) : Signals.Pending.Take(sig);
        return sig;
    }

    private void RestartWithHandler(ref UserRegs r, int sig)
    {
        switch (-(long)r.Rax)
        {
            case ERESTART_RESTARTBLOCK or ERESTARTNOHAND:
                r.Rax = unchecked((ulong)-Errno.EINTR);
                break;
            case ERESTARTSYS when (Signals.Flags(sig) & SignalState.SA_RESTART) == 0:
                r.Rax = unchecked((ulong)-Errno.EINTR);
                break;
            default:
                r.Rax = r.OrigRax;
                r.Rip -= 2;
                break;
        }
    }

    private static void RestartWithoutHandler(ref UserRegs r)
    {
        r.Rax = -(long)r.Rax == ERESTART_RESTARTBLOCK ? NrRestartSyscall : r.OrigRax;
        r.Rip -= 2;
    }

    /// <summary>rt_sigsuspend's mask goes back when no handler's frame took it.</summary>
    private void RestoreSavedMask()
    {
        if (Task.SavedMask is { } m)
        {
            Task.Blocked = m;
            Task.SavedMask = null;
        }
    }
}
