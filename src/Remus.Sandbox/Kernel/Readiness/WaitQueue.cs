namespace Remus.Sandbox.Kernel.Readiness;

/// <summary>
/// One entry on a <see cref="WaitQueue"/>: a blocked call (<see cref="Waiter"/>) or an epoll interest item, told
/// when the file's readiness may have changed.
/// </summary>
internal abstract class WaitEntry
{
    /// <summary>The events this entry is woken for; a notification with no events wakes every entry.</summary>
    public PollEvents Mask { get; set; } = (PollEvents)uint.MaxValue;

    /// <summary>Called by <see cref="WaitQueue.Notify"/> with the events that happened (None: anything may have).</summary>
    public abstract void Wake(PollEvents events);
}

/// <summary>
/// Who waits on a file (Linux's wait_queue_head_t): a file notifies its queue when its readiness may have changed
/// (data arrived, room freed, the other end closed, a timer expired or was re-armed). Any number of waiters; safe to
/// notify from any thread, so that threads (later) can block on the same file. The file's own state is guarded by
/// the kernel, not here.
/// </summary>
internal sealed class WaitQueue
{
    private readonly List<WaitEntry> _entries = [];
    private WaitEntry[] _snapshot = [];
    private bool _changed;

    public void Add(WaitEntry entry)
    {
        lock (_entries)
        {
            _entries.Add(entry);
            _changed = true;
        }
    }

    public void Remove(WaitEntry entry)
    {
        lock (_entries)
        {
            if (_entries.Remove(entry)) _changed = true;
        }
    }

    public bool IsEmpty
    {
        get { lock (_entries) return _entries.Count == 0; }
    }

    /// <summary>
    /// Wakes the entries interested in <paramref name="events"/> (all of them when None: a close, a re-arm), in the
    /// order they were added. Entries may add or remove entries meanwhile (epoll removing a disarmed item).
    /// </summary>
    public void Notify(PollEvents events)
    {
        WaitEntry[] entries;
        lock (_entries)
        {
            if (_entries.Count == 0) return;
            if (_changed)
            {
                _snapshot = [.. _entries];
                _changed = false;
            }
            entries = _snapshot;
        }
        foreach (var e in entries)
            if (events == PollEvents.None || (e.Mask & events) != 0) e.Wake(events);
    }
}
