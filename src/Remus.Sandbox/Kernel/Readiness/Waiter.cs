namespace Remus.Sandbox.Kernel.Readiness;

/// <summary>
/// A call that blocks until one of the files it waits on may be ready (read, write, poll, select, epoll_wait):
/// it listens on each file's <see cref="WaitQueue"/>, checks readiness, and sleeps until woken, a deadline, or the
/// kernel's interrupt (pause, checkpoint, destroy). Always check after <see cref="Arm"/> and before
/// <see cref="Sleep"/>: a notification in between is not lost. Dispose it to leave every queue.
/// </summary>
internal sealed class Waiter : IDisposable
{
    private readonly ManualResetEventSlim _woken = new(false);
    private readonly List<(WaitQueue Queue, Entry Entry)> _listening = [];

    private sealed class Entry(Waiter owner) : WaitEntry
    {
        public override void Wake(PollEvents events) => owner._woken.Set();
    }

    /// <summary>Wakes this waiter when <paramref name="queue"/> is notified of any of <paramref name="mask"/>.</summary>
    public void Listen(WaitQueue queue, PollEvents mask)
    {
        // Errors and hang-ups always wake, as Linux's poll always reports them.
        var e = new Entry(this) { Mask = mask | PollEvents.Err | PollEvents.Hup };
        _listening.Add((queue, e));
        queue.Add(e);
    }

    /// <summary>Whether a notification came since <see cref="Arm"/>.</summary>
    public bool Woken => _woken.IsSet;

    /// <summary>Forgets earlier wake-ups; call before checking readiness.</summary>
    public void Arm() => _woken.Reset();

    /// <summary>
    /// Sleeps until woken or for <paramref name="timeoutNs"/> (negative: no limit). Returns false when the wait
    /// was interrupted (the caller restarts the call later).
    /// </summary>
    public bool Sleep(long timeoutNs, CancellationToken interrupt)
    {
        // Whole milliseconds, rounded up: the caller's loop checks the clock again anyway.
        int ms = timeoutNs < 0 ? Timeout.Infinite : (int)Math.Min(timeoutNs / 1_000_000 + 1, int.MaxValue - 1);
        try
        {
            _woken.Wait(ms, interrupt);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        foreach (var (q, e) in _listening) q.Remove(e);
        _listening.Clear();
        _woken.Dispose();
    }
}
