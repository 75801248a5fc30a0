namespace Remus.Sandbox.Kernel;

/// <summary>
/// Linux's restart_block: a timed wait interrupted by a signal that ran no handler (a stop) returns
/// ERESTART_RESTARTBLOCK and comes back as restart_syscall, which waits out the same deadline (nanosleep,
/// clock_nanosleep, futex with a timeout). rt_sigreturn forgets it (a restart after a handler is EINTR).
/// </summary>
internal sealed partial class SandboxKernel
{
    internal enum RestartKind { Nanosleep, Futex }

    internal readonly record struct RestartBlock(RestartKind Kind, long DeadlineNs, ulong Address, uint Value = 0);

    private ref RestartBlock? _restartBlock => ref Current.RestartBlock;

    /// <summary>A relative sleep cut short: the time left goes to rem (if given) and to the restart block.</summary>
    private void InterruptedSleep(long deadline, ulong rem)
    {
        if (rem != 0) WriteTimespec(rem, Math.Max(0, deadline - Clock.MonotonicNs));
        _restartBlock = new RestartBlock(RestartKind.Nanosleep, deadline, rem);
    }

    private long SysRestartSyscall(ulong rip)
    {
        if (_restartBlock is not { } b) return -Errno.EINTR;
        long deadline = _restartedDeadline ?? b.DeadlineNs;
        try
        {
            if (b.Kind == RestartKind.Futex)
            {
                // The futex wait again, on the same deadline (a wake ends it, as the first wait).
                long r = FutexWaitUntil(b.Address, b.Value, deadline, FutexBitsetAll, rip);
                _restartBlock = null;
                return r;
            }
            SleepUntil(deadline, rip);
        }
        catch (SignalInterruptException)
        {
            if (b.Kind == RestartKind.Nanosleep) InterruptedSleep(deadline, b.Address);
            throw;
        }
        _restartBlock = null;
        return b.Kind == RestartKind.Futex ? -Errno.ETIMEDOUT : 0;
    }

    private void SaveRestartBlock(BinaryWriter w)
    {
        w.Write(_restartBlock.HasValue);
        var b = _restartBlock.GetValueOrDefault();
        w.Write((int)b.Kind); w.Write(b.DeadlineNs); w.Write(b.Address); w.Write(b.Value);
    }

    private void LoadRestartBlock(BinaryReader r)
    {
        bool has = r.ReadBoolean();
        var b = new RestartBlock((RestartKind)r.ReadInt32(), r.ReadInt64(), r.ReadUInt64(), r.ReadUInt32());
        _restartBlock = has ? b : null;
    }
}
