namespace Remus.Sandbox.Kernel;

/// <summary>
/// How signals reach a program that is blocked in a system call or running. Whatever may make a signal pending
/// from another thread (today: the host timer behind itimers and POSIX timers) calls <see cref="WakeForSignal"/>:
/// it wakes the blocking call, which then looks (<see cref="InterruptIfSignalled"/>) and is interrupted with a
/// restart code when a signal would run a handler, stop or end the program; and it kicks every thread's vCPU, so a program
/// busy in its own code takes the signal at once.
/// </summary>
internal sealed partial class SandboxKernel
{
    // The kernel's internal restart codes (include/linux/errno.h); never seen by the program.
    internal const long ERESTARTSYS = 512, ERESTARTNOINTR = 513, ERESTARTNOHAND = 514, ERESTART_RESTARTBLOCK = 516;

    private readonly Lock _wakeLock = new();
    private CancellationTokenSource _signalWake = new();
    private volatile bool _timerCheckDue;

    /// <summary>Any thread: a signal may have become pending (a timer is due).</summary>
    internal void WakeForSignal()
    {
        _timerCheckDue = true;
        lock (_wakeLock) _signalWake.Cancel();
        KickAll(); // a process signal goes to whichever thread does not block it
    }

    /// <summary>Fires when <see cref="WakeForSignal"/> is called (until <see cref="InterruptIfSignalled"/> resets it).</summary>
    private CancellationToken SignalToken
    {
        get { lock (_wakeLock) return _signalWake.Token; }
    }

    /// <summary>
    /// Thrown by a blocking call that a signal interrupts: the call's result is -<see cref="Code"/>, which delivery
    /// turns into EINTR or a restart (as Linux's handle_signal does).
    /// </summary>
    internal sealed class SignalInterruptException(long code) : Exception
    {
        public long Code { get; } = code;
    }

    /// <summary>
    /// Takes due timers and throws <see cref="SignalInterruptException"/> with <paramref name="restartCode"/> when a
    /// signal is pending that would interrupt the call (one that is not blocked and not ignored).
    /// </summary>
    private void InterruptIfSignalled(long restartCode)
    {
        lock (_wakeLock)
            if (_signalWake.IsCancellationRequested) _signalWake = new CancellationTokenSource();
        ExpireTimers();
        if (HasInterruptingSignal()) throw new SignalInterruptException(restartCode);
    }

    private bool HasInterruptingSignal()
    {
        ulong ready = (Task.Pending.Set | Signals.Pending.Set) & ~Task.Blocked;
        while (ready != 0)
        {
            int sig = System.Numerics.BitOperations.TrailingZeroCount(ready) + 1;
            ready &= ready - 1;
            if (sig == SIGKILL || !Signals.Ignored(sig)) return true;
        }
        return false;
    }

    /// <summary>
    /// For a blocking call whose wait (on a token from <see cref="BlockingWait"/>) was cancelled: a pause or
    /// checkpoint restarts it later; a signal interrupts it; anything else (a timer whose signal is blocked) runs it again.
    /// </summary>
    private Exception WaitEnded(long restartCode)
    {
        if (Interrupt.IsCancellationRequested) return new RestartException();
        try
        {
            InterruptIfSignalled(restartCode);
        }
        catch (SignalInterruptException e)
        {
            return e;
        }
        return new RestartException();
    }

    /// <summary>A token for one blocking call: pause, checkpoint, destroy, or a signal. Dispose it after.</summary>
    private CancellationTokenSource BlockingWait() => CancellationTokenSource.CreateLinkedTokenSource(Interrupt, SignalToken);

    /// <summary>Blocks until a signal interrupts (by default ERESTARTNOHAND: pause and sigsuspend never restart) or a pause does.</summary>
    private void WaitForSignal(long restartCode = ERESTARTNOHAND)
    {
        while (true)
        {
            InterruptIfSignalled(restartCode);
            int woke;
            using (Unlocked()) woke = WaitHandle.WaitAny([Interrupt.WaitHandle, SignalToken.WaitHandle]);
            if (woke == 0) throw new RestartException();
        }
    }
}
