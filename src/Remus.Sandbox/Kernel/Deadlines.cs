namespace Remus.Sandbox.Kernel;

/// <summary>
/// Blocking with a deadline. A timed wait that is interrupted (pause, checkpoint) is restarted later from the same
/// syscall instruction; its deadline is kept here and in the checkpointed kernel state, so the restart waits only
/// what is left, even on another host (deadlines are on the guest's monotonic clock, which checkpoints carry).
/// Every blocking call with a timeout goes through here (today nanosleep, clock_nanosleep, futex; poll, select and
/// epoll_wait are not offered yet and must when they are).
/// </summary>
internal sealed partial class SandboxKernel
{
    /// <summary>The deadline of the timed wait that was interrupted at Rip (the address after its syscall).</summary>
    private ref (ulong Rip, long DeadlineNs)? _interruptedWait => ref Current.InterruptedWait;

    /// <summary>
    /// The deadline of the interrupted wait when the call being served is its restart (use it instead of computing a
    /// new one); else null.
    /// </summary>
    private ref long? _restartedDeadline => ref Current.RestartedDeadline;

    /// <summary>At each call: a restart finds its deadline; any other call forgets it (it can only be the next one).</summary>
    private void TakeInterruptedWait(ulong rip)
    {
        _restartedDeadline = _interruptedWait is { } w && w.Rip == rip ? w.DeadlineNs : null;
        _interruptedWait = null;
    }

    /// <summary>Saturating now + <paramref name="relativeNs"/> on the guest's monotonic clock.</summary>
    private long MonotonicDeadline(long relativeNs)
    {
        long now = Clock.MonotonicNs;
        return relativeNs > long.MaxValue - now ? long.MaxValue : now + relativeNs;
    }

    /// <summary>
    /// Blocks until the guest's monotonic clock reaches <paramref name="deadline"/>. If interrupted first, records
    /// the deadline for the restart of the call at <paramref name="rip"/> and throws <see cref="RestartException"/>.
    /// </summary>
    private void SleepUntil(long deadline, ulong rip)
    {
        while (true)
        {
            InterruptIfSignalled(ERESTART_RESTARTBLOCK); // a signal ends the wait (see SignalWaits.cs)
            long left = deadline - Clock.MonotonicNs;
            if (left <= 0) return;
            // Whole milliseconds, rounded up: a wait never ends before its deadline (the loop checks again anyway).
            var timeout = TimeSpan.FromMilliseconds(Math.Min(left / 1_000_000 + 1, int.MaxValue - 1));
            int woke;
            using (Unlocked()) woke = WaitHandle.WaitAny([Interrupt.WaitHandle, SignalToken.WaitHandle], timeout);
            if (woke == 0)
            {
                _interruptedWait = (rip, deadline);
                throw new RestartException();
            }
        }
    }
}
