namespace Remus.Sandbox.Net;

/// <summary>
/// The loopback interface (127.0.0.0/8 and the domain's own address): a datagram sent to it is queued, and the queue
/// is drained by the outermost call into the stack as it leaves (<see cref="Enter"/>/<see cref="Exit"/>), so a
/// transport's Send never re-enters its own Receive. At most <see cref="NetLimits.LoopbackQueueMax"/> datagrams wait
/// (netdev_max_backlog). A send outside any call (none should happen) leaves the queue for the next timer run.
/// </summary>
internal sealed class Loopback
{
    private readonly Queue<PacketBuffer> _queue = new();
    private readonly NetStats _stats;
    private readonly PacketHandler _deliver;
    private readonly Action _deadlineChanged;
    private int _depth;

    public Loopback(NetStats stats, PacketHandler deliver, Action deadlineChanged)
    {
        _stats = stats;
        _deliver = deliver;
        _deadlineChanged = deadlineChanged;
    }

    public int Queued => _queue.Count;

    /// <summary>Queues a whole IPv4 packet for delivery inside the stack; the queue owns (and returns) the buffer.</summary>
    public void Send(PacketBuffer packet)
    {
        if (_queue.Count >= NetLimits.LoopbackQueueMax)
        {
            packet.Return();
            _stats.Drop(NetDrop.LoopbackQueueFull);
            return;
        }
        _queue.Enqueue(packet);
        _stats.Loopback();
        if (_depth == 0) _deadlineChanged();
    }

    /// <summary>Due now when a datagram waits outside any call.</summary>
    public long NextDeadlineNs => _queue.Count > 0 && _depth == 0 ? 0 : long.MaxValue;

    public void Enter() => _depth++;

    /// <summary>Leaves a call; the outermost one delivers what was queued meanwhile (and what those deliveries queue).</summary>
    public void Exit()
    {
        if (_depth > 1)
        {
            _depth--;
            return;
        }
        try
        {
            while (_queue.TryDequeue(out var p))
            {
                try { _deliver(p.Span); }
                finally { p.Return(); }
            }
        }
        finally
        {
            _depth = 0;
        }
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_queue.Count);
        foreach (var p in _queue) p.Save(w);
    }

    public void Load(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n is < 0 or > NetLimits.LoopbackQueueMax) throw new InvalidDataException($"stack snapshot: {n} loopback datagrams");
        for (int i = 0; i < n; i++) _queue.Enqueue(PacketBuffer.Load(r));
    }
}
