using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Tasks;
using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// rt_sigaction, rt_sigprocmask, rt_sigpending, sigaltstack, kill, tkill, tgkill, rt_sigqueueinfo, pause,
/// rt_sigsuspend. Delivery (frames, rt_sigreturn) is in Kernel/Signals/.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int SIGKILL = 9, SIGCONT = 18, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22;
    private const ulong StopSignals = (1UL << (SIGSTOP - 1)) | (1UL << (SIGTSTP - 1)) | (1UL << (SIGTTIN - 1)) | (1UL << (SIGTTOU - 1));
    private const ulong SIG_DFL = 0, SIG_IGN = 1;
    private const int MINSIGSTKSZ = 2048;

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
        if (act != 0)
        {
            Span<byte> next = stackalloc byte[SignalState.SigActionSize];
            CopyFromGuest(act, next);
            ulong mask = BinaryPrimitives.ReadUInt64LittleEndian(next[24..]) & ~Unblockable;
            BinaryPrimitives.WriteUInt64LittleEndian(next[24..], mask);
            next.CopyTo(Signals.Action(sig));
            // POSIX: making a pending signal ignored discards it, blocked or not.
            if (Signals.Ignored(sig))
            {
                foreach (var t in Tasks) t.Signals.Pending.Remove(PendingSignals.Bit(sig));
                Signals.Pending.Remove(PendingSignals.Bit(sig));
            }
        }
        if (oldAct != 0) Memory.Write(oldAct, old);
        return 0;
    }

    private const int SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
    private const ulong Unblockable = (1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1));

    private long SysRtSigprocmask(int how, ulong set, ulong oldSet, ulong sigsetSize)
    {
        if (sigsetSize != 8) return -Errno.EINVAL;
        ulong old = Task.Blocked;
        if (set != 0)
        {
            ulong s = Memory.ReadU64(set) & ~Unblockable;
            switch (how)
            {
                case SIG_BLOCK: Task.Blocked |= s; break;
                case SIG_UNBLOCK: Task.Blocked &= ~s; break;
                case SIG_SETMASK: Task.Blocked = s; break;
                default: return -Errno.EINVAL;
            }
        }
        if (oldSet != 0) Memory.WriteU64(oldSet, old); // signals it unblocked are delivered on the way out
        return 0;
    }

    private long SysRtSigpending(ulong set, ulong sigsetSize)
    {
        if (sigsetSize > 8) return -Errno.EINVAL;
        ulong pending = (Task.Pending.Set | Signals.Pending.Set) & Task.Blocked;
        if (sigsetSize == 8) Memory.WriteU64(set, pending);
        else if (sigsetSize >= 4) Memory.WriteU32(set, (uint)pending);
        return 0;
    }

    /// <summary>sigaltstack, as Linux's do_sigaltstack: no change while on the stack (EPERM), MINSIGSTKSZ at least.</summary>
    private long SysSigaltstack(ulong ss, ulong oldSs, ulong sp)
    {
        ulong oldSp = Task.AltSp, oldSize = Task.AltSize;
        int oldFlags = Task.AltStackFlags(sp) | (int)(Task.AltFlags & TaskSignals.SS_AUTODISARM);
        if (ss != 0)
        {
            ulong newSp = Memory.ReadU64(ss), newSize = Memory.ReadU64(ss + 16);
            uint flags = Memory.ReadU32(ss + 8);
            long rc = SetAltStack(newSp, flags, newSize, sp);
            if (rc != 0) return rc;
        }
        if (oldSs != 0)
        {
            Memory.WriteU64(oldSs, oldSp);
            Memory.WriteU64(oldSs + 8, (uint)oldFlags);
            Memory.WriteU64(oldSs + 16, oldSize);
        }
        return 0;
    }

    private long SetAltStack(ulong newSp, uint flags, ulong newSize, ulong sp)
    {
        if (Task.OnAltStack(sp)) return -Errno.EPERM;
        uint mode = flags & ~TaskSignals.SS_AUTODISARM;
        if (mode is not (0 or TaskSignals.SS_ONSTACK or TaskSignals.SS_DISABLE)) return -Errno.EINVAL;
        if (mode == TaskSignals.SS_DISABLE)
        {
            newSp = 0;
            newSize = 0;
        }
        else if (newSize < MINSIGSTKSZ)
        {
            return -Errno.ENOMEM;
        }
        Task.AltSp = newSp;
        Task.AltSize = newSize;
        Task.AltFlags = flags;
        return 0;
    }

    /// <summary>kill: the only process is the program (pid 1, also its own group).</summary>
    private long SysKill(int pid, int sig)
    {
        if (pid != Pid && pid != 0 && pid != -1 && pid != -Pid) return -Errno.ESRCH;
        if (sig < 0 || sig > SignalState.NSig) return -Errno.EINVAL;
        if (sig == 0) return 0;
        SendSignal(SigInfo.FromProcess(sig, SigInfo.SI_USER, Pid, 0), toTask: false);
        return 0;
    }

    /// <summary>tkill/tgkill (tgid -1: tkill): to one live thread of the program.</summary>
    private long SysTgkill(int tgid, int tid, int sig)
    {
        if (tid <= 0 || (tgid <= 0 && tgid != -1)) return -Errno.EINVAL;
        if (sig < 0 || sig > SignalState.NSig) return -Errno.EINVAL;
        var target = FindTask(tid);
        if (target == null || (tgid != -1 && tgid != Pid)) return -Errno.ESRCH;
        if (sig == 0) return 0;
        SendSignal(SigInfo.FromProcess(sig, SigInfo.SI_TKILL, Pid, 0), target);
        return 0;
    }

    /// <summary>rt_sigqueueinfo / rt_tgsigqueueinfo: a siginfo of the program's own making. Linux refuses a kernel-looking
    /// si_code (&gt;= 0, or SI_TKILL) only from another process; here the sender is always the target.</summary>
    private long SysRtSigqueueinfo(int tgid, int tid, int sig, ulong uinfo, bool toTask)
    {
        if (!ValidSignal(sig)) return -Errno.EINVAL;
        Span<byte> raw = stackalloc byte[SigInfo.Size];
        CopyFromGuest(uinfo, raw);
        var info = SigInfo.ReadFrom(raw) with { Signo = sig };
        var target = toTask ? FindTask(tid) : null;
        if (tgid != Pid || (toTask && target == null)) return -Errno.ESRCH;
        SendSignal(info, target);
        return 0;
    }

    /// <summary>
    /// Generates a signal, as Linux's send_signal: SIGCONT discards pending stops and a stop discards a pending
    /// SIGCONT; an ignored signal that is not blocked is dropped; a standard signal already pending is not queued
    /// again. It is acted on at the program's next return from the kernel.
    /// </summary>
    private bool SendSignal(in SigInfo info, bool toTask) => SendSignal(info, toTask ? Current : null);

    /// <summary>
    /// <see cref="SendSignal(in SigInfo, bool)"/> to thread <paramref name="target"/>, or to the process (null): any
    /// thread not blocking it takes it. Another thread that may take it is woken (kicked, or its wait ended).
    /// </summary>
    private bool SendSignal(in SigInfo info, GuestTask? target)
    {
        int sig = info.Signo;
        ulong bit = PendingSignals.Bit(sig);
        if (sig == SIGCONT)
        {
            foreach (var t in Tasks) t.Signals.Pending.Remove(StopSignals);
            Signals.Pending.Remove(StopSignals);
        }
        else if ((StopSignals & bit) != 0)
        {
            foreach (var t in Tasks) t.Signals.Pending.Remove(PendingSignals.Bit(SIGCONT));
            Signals.Pending.Remove(PendingSignals.Bit(SIGCONT));
        }
        var ts = (target ?? Current).Signals;
        if (sig != SIGKILL && (ts.Blocked & bit) == 0 && Signals.Ignored(sig)) return false;
        bool added = (target != null ? ts.Pending : Signals.Pending).Add(info);
        if (added && (target == null || target != Current) && Tasks.Count > 1) WakeOthers();
        return added;
    }

    /// <summary>pause: sleeps until a signal runs a handler (then EINTR) or ends the program.</summary>
    private long SysPause()
    {
        WaitForSignal();
        return 0; // not reached: WaitForSignal ends in an exception
    }

    /// <summary>rt_sigsuspend: pause with <paramref name="mask"/> blocked; the caller's mask is back after the handler.</summary>
    private long SysRtSigsuspend(ulong mask, ulong sigsetSize)
    {
        if (sigsetSize != 8) return -Errno.EINVAL;
        ulong m = Memory.ReadU64(mask) & ~Unblockable;
        Task.SavedMask = Task.Blocked;
        Task.Blocked = m;
        try
        {
            WaitForSignal();
        }
        catch (RestartException)
        {
            // Paused (checkpoint): run the call again later, with the caller's mask as it was.
            Task.Blocked = Task.SavedMask.Value;
            Task.SavedMask = null;
            throw;
        }
        return 0;
    }

    /// <summary>Reads guest memory into <paramref name="destination"/> through copying calls only.</summary>
    private void CopyFromGuest(ulong addr, Span<byte> destination)
    {
        int i = 0;
        for (; i + 8 <= destination.Length; i += 8)
            BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], Memory.ReadU64(addr + (ulong)i));
        for (; i < destination.Length; i++) destination[i] = Memory.Read<byte>(addr + (ulong)i);
    }
}
