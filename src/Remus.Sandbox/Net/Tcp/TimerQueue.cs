namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// The connections' earliest deadlines in a heap with lazy deletion: a connection is queued again whenever its
/// deadline moves; stale entries are skipped when they surface (and the heap is rebuilt when they pile up).
/// </summary>
internal sealed class TimerQueue
{
    private readonly PriorityQueue<TcpControlBlock, long> _heap = new();

    public void Schedule(TcpControlBlock c)
    {
        long d = c.NextDeadlineNs;
        if (d == long.MaxValue || d == c.QueuedDeadlineNs) return;
        // An earlier-queued entry for a later deadline is harmless (skipped); queue only when earlier than the queued one.
        if (c.QueuedDeadlineNs != long.MaxValue && c.QueuedDeadlineNs <= d && c.InHeap) return;
        c.QueuedDeadlineNs = d;
        c.InHeap = true;
        _heap.Enqueue(c, d);
        if (_heap.Count > 4096 && _heap.Count > 8 * _live) Rebuild();
    }

    private int _live;
    public int Live { set => _live = value; }

    /// <summary>The earliest deadline (skipping stale entries).</summary>
    public long Peek()
    {
        while (_heap.TryPeek(out var c, out long d))
        {
            if (c.InHeap && c.QueuedDeadlineNs == d && !c.Removed) return Math.Min(d, c.NextDeadlineNs);
            _heap.Dequeue();
        }
        return long.MaxValue;
    }

    /// <summary>Takes a connection whose queued deadline is at or before <paramref name="now"/>.</summary>
    public TcpControlBlock? TakeDue(long now)
    {
        while (_heap.TryPeek(out var c, out long d))
        {
            if (!c.InHeap || c.QueuedDeadlineNs != d || c.Removed) { _heap.Dequeue(); continue; }
            if (d > now && c.NextDeadlineNs > now) return null;
            _heap.Dequeue();
            c.InHeap = false;
            c.QueuedDeadlineNs = long.MaxValue;
            return c;
        }
        return null;
    }

    public void Clear() => _heap.Clear();

    private void Rebuild()
    {
        var items = new List<TcpControlBlock>();
        while (_heap.TryDequeue(out var c, out long d))
            if (c.InHeap && c.QueuedDeadlineNs == d && !c.Removed) items.Add(c);
        foreach (var c in items) _heap.Enqueue(c, c.QueuedDeadlineNs);
    }
}
