namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// A listener's half-open connections (SYN_RECEIVED), oldest first. When it is full a new SYN replaces the oldest
/// entry if that one's SYN-ACK already went unanswered at least once (a flood's forged sources never answer; a real
/// client then gets in on its next SYN instead of after the flood's entries time out); otherwise the new SYN is dropped.
/// No SYN cookies: the queue's bound is the memory a flood can cost.
/// </summary>
internal sealed class SynQueue
{
    private readonly SortedSet<TcpControlBlock> _set = new(Comparer<TcpControlBlock>.Create((a, b) => a.Key.CompareTo(b.Key)));

    public int Count => _set.Count;
    public void Add(TcpControlBlock c) => _set.Add(c);
    public bool Remove(TcpControlBlock c) => _set.Remove(c);
    public void Clear() => _set.Clear();
    public TcpControlBlock[] ToArray() => [.. _set];

    /// <summary>The oldest entry when it may be evicted for a new SYN (its SYN-ACK was retransmitted), else null.</summary>
    public TcpControlBlock? Evictable => _set.Min is { Retransmits: > 0 } c ? c : null;
}
