namespace Remus.Sandbox.Kernel;

/// <summary>rt_sigaction, rt_sigprocmask, rt_sigpending, sigaltstack, kill, tkill, tgkill.</summary>
internal sealed partial class SandboxKernel
{
    private const int SIGKILL = 9, SIGCONT = 18, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22;
    private const ulong StopSignals = (1UL << (SIGSTOP - 1)) | (1UL << (SIGTSTP - 1)) | (1UL << (SIGTTIN - 1)) | (1UL << (SIGTTOU - 1));
    private const ulong SIG_DFL = 0, SIG_IGN = 1;

    /// <summary>
    /// The signal that stopped the program in the call just served (0: none). A stop has no one to continue it from
    /// inside a domain: the domain pauses, and unpausing it is the SIGCONT (the call then returns its result).
    /// </summary>
    public int StopSignal { get; private set; }

    private static bool ValidSignal(int sig) => sig >= 1 && sig <= SignalState.NSig;

    private long SysRtSigaction(int sig, ulong act, ulong oldAct, ulong sigsetSize)
    {
        if (sigsetSize != 8 || !ValidSignal(sig)) return -Errno.EINVAL;
        if (act != 0 && (sig == SIGKILL || sig == SIGSTOP)) return -Errno.EINVAL;
        Span<byte> old = stackalloc byte[SignalState.SigActionSize];
        Signals.Action(sig).CopyTo(old);
        if (act != 0) Memory.Span(act, SignalState.SigActionSize).CopyTo(Signals.Action(sig));
        if (oldAct != 0) Memory.Write(oldAct, old);
        return 0;
    }

    private const int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    private const ulong Unblockable = (1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1));

    private long SysRtSigprocmask(int how, ulong set, ulong oldSet, ulong sigsetSize)
    {
        if (sigsetSize != 8) return -Errno.EINVAL;
        ulong old = Signals.Blocked;
        if (set != 0)
        {
            ulong s = Memory.ReadU64(set) & ~Unblockable;
            switch (how)
            {
                case SIG_BLOCK: Signals.Blocked |= s; break;
                case SIG_UNBLOCK: Signals.Blocked &= ~s; break;
                case SIG_SETMASK: Signals.Blocked = s; break;
                default: return -Errno.EINVAL;
            }
        }
        if (oldSet != 0) Memory.WriteU64(oldSet, old);
        DeliverUnblocked();
        return 0;
    }

    private long SysRtSigpending(ulong set, ulong sigsetSize)
    {
        if (sigsetSize > 8) return -Errno.EINVAL;
        Memory.WriteU64(set, Signals.Pending & Signals.Blocked);
        return 0;
    }

    /// <summary>Acts on pending signals that are no longer blocked, as Linux does on return from sigprocmask.</summary>
    private void DeliverUnblocked()
    {
        ulong ready = Signals.Pending & ~Signals.Blocked;
        if (ready == 0) return;
        int sig = System.Numerics.BitOperations.TrailingZeroCount(ready) + 1;
        Signals.Pending &= ~(1UL << (sig - 1));
        RaiseSignal(sig);
        DeliverUnblocked();
    }

    private long SysSigaltstack(ulong ss, ulong oldSs)
    {
        Span<byte> old = stackalloc byte[24];
        Signals.AltStack.CopyTo(old);
        if (old.IndexOfAnyExcept((byte)0) < 0) old[8] = 2; // SS_DISABLE
        if (ss != 0) Memory.Span(ss, 24).CopyTo(Signals.AltStack);
        if (oldSs != 0) Memory.Write(oldSs, old);
        return 0;
    }

    /// <summary>kill/tkill/tgkill: the only process and thread is the program itself.</summary>
    private long SysKill(int pid, int sig)
    {
        if (pid != Pid && pid != 0 && pid != -1) return -Errno.ESRCH;
        if (sig == 0) return 0;
        if (!ValidSignal(sig)) return -Errno.EINVAL;
        return RaiseSignal(sig);
    }

    /// <summary>Applies Linux's action for <paramref name="sig"/> sent to the program by itself.</summary>
    private long RaiseSignal(int sig)
    {
        // As Linux does when a signal is generated: SIGCONT discards pending stop signals, and a stop signal SIGCONT.
        if (sig == SIGCONT) Signals.Pending &= ~StopSignals;
        else if ((StopSignals & (1UL << (sig - 1))) != 0) Signals.Pending &= ~(1UL << (SIGCONT - 1));
        ulong handler = Signals.Handler(sig);
        bool fatal = sig == SIGKILL;
        if (!fatal)
        {
            if (handler == SIG_IGN) return 0;
            if ((Signals.Blocked & (1UL << (sig - 1))) != 0)
            {
                Signals.Pending |= 1UL << (sig - 1); // acted on when unblocked
                return 0;
            }
            if (handler == SIG_DFL)
            {
                if (SignalState.DefaultIgnores(sig)) return 0;
                if (SignalState.DefaultStops(sig))
                {
                    StopSignal = sig;
                    return 0;
                }
            }
            else
            {
                Log?.Invoke($"signal {sig} has a handler, but running signal handlers is not supported: the program ends");
            }
        }
        Exit(128 + sig);
        throw new ExitException();
    }
}
