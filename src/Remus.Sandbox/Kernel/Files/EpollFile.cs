using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// One watched file in an epoll set (Linux's epitem), keyed by the open file and the fd number it was added with.
/// It sits on the file's wait queue; when woken with events it asked for, it joins the set's ready list.
/// </summary>
internal sealed class EpollItem(EpollFile owner, FileDescription file, int fd) : WaitEntry
{
    public EpollFile Owner { get; } = owner;
    public FileDescription File { get; } = file;
    public int Fd { get; } = fd;

    /// <summary>The events asked for, with EPOLLET/EPOLLONESHOT; after a one-shot fired only those flag bits remain (disarmed).</summary>
    public uint Events { get; set; }
    public ulong Data { get; set; }

    /// <summary>On the ready list.</summary>
    public bool Ready { get; set; }

    public override void Wake(PollEvents events) => Owner.OnWake(this, events);
}

/// <summary>
/// An epoll instance (fs/eventpoll.c): the interest list, and the ready list that wake-ups fill and epoll_wait
/// drains. Level-triggered items go back on the ready list after being reported (so the next wait looks at them
/// again), edge-triggered ones only on the next wake-up, one-shot ones are disarmed until EPOLL_CTL_MOD. The order of
/// the ready list is Linux's: unreported items first, then items woken during the scan, then the level-triggered
/// ones just reported. Itself pollable (readable while something is ready), so epolls nest.
/// </summary>
internal sealed class EpollFile(GuestClock clock) : FileDescription
{
    public const uint EPOLLEXCLUSIVE = 1u << 28, EPOLLWAKEUP = 1u << 29, EPOLLONESHOT = 1u << 30, EPOLLET = 1u << 31;
    public const uint PrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

    private readonly WaitQueue _queue = new();
    private readonly List<EpollItem> _items = [];
    private List<EpollItem> _ready = [];

    /// <summary>While the ready list is scanned: the item being polled (its own wake-ups are the ones being read).</summary>
    private EpollItem? _polling;
    private bool _scanning;
    private readonly List<EpollItem> _overflow = [];

    public IReadOnlyList<EpollItem> Items => _items;
    public IReadOnlyList<EpollItem> ReadyList => _ready;

    public int IndexOf(EpollItem item) => _items.IndexOf(item);

    public override WaitQueue Queue => _queue;

    public EpollItem? Find(FileDescription file, int fd)
    {
        foreach (var i in _items) if (i.File == file && i.Fd == fd) return i;
        return null;
    }

    private static PollEvents Poll(EpollItem item) => item.File.Readiness() & (PollEvents)(item.Events & ~PrivateBits);

    internal void OnWake(EpollItem item, PollEvents events)
    {
        if ((item.Events & ~PrivateBits) == 0) return;                          // a disarmed one-shot
        if (events != PollEvents.None && ((uint)events & item.Events) == 0) return;
        if (item == _polling) return;
        if (_scanning)
        {
            if (!_overflow.Contains(item)) _overflow.Add(item);
        }
        else if (!item.Ready)
        {
            item.Ready = true;
            _ready.Add(item);
        }
        else return;
        _queue.Notify(PollEvents.Readable);
    }

    /// <summary>EPOLL_CTL_ADD (the caller checked it is not there yet).</summary>
    public void Add(FileDescription file, int fd, uint events, ulong data)
    {
        var item = new EpollItem(this, file, fd) { Events = events | (uint)(PollEvents.Err | PollEvents.Hup), Data = data };
        Attach(item);
        if (Poll(item) != PollEvents.None) MakeReady(item);
    }

    /// <summary>EPOLL_CTL_MOD: new events and data (re-arms a one-shot).</summary>
    public void Modify(EpollItem item, uint events, ulong data)
    {
        item.Events = events | (uint)(PollEvents.Err | PollEvents.Hup);
        item.Data = data;
        if (Poll(item) != PollEvents.None && !item.Ready) MakeReady(item);
    }

    private void MakeReady(EpollItem item)
    {
        if (item.Ready) return; // its file's poll woke it already (a console or timerfd notices a change as it is polled)
        item.Ready = true;
        _ready.Add(item);
        _queue.Notify(PollEvents.Readable);
    }

    private void Attach(EpollItem item)
    {
        _items.Add(item);
        (item.File.Watchers ??= []).Add(item);
        item.File.Queue!.Add(item);
    }

    /// <summary>EPOLL_CTL_DEL, and the removal of a file that is closed for good.</summary>
    public void Forget(EpollItem item)
    {
        _items.Remove(item);
        if (item.Ready) _ready.Remove(item);
        item.Ready = false;
        item.File.Queue?.Remove(item);
        item.File.Watchers?.Remove(item);
    }

    /// <summary>Lets files whose readiness changes with time (timerfd) notice it, before the ready list is read.</summary>
    private void CheckTimers()
    {
        long now = clock.MonotonicNs;
        foreach (var item in _items.ToArray())
            if (item.File.NextEventNs <= now) item.File.Readiness();
    }

    /// <summary>When a watched file's readiness changes by itself next (guest monotonic ns).</summary>
    public override long NextEventNs
    {
        get
        {
            long next = long.MaxValue;
            foreach (var i in _items)
                if ((i.Events & ~PrivateBits) != 0) next = Math.Min(next, i.File.NextEventNs);
            return next;
        }
    }

    /// <summary>
    /// epoll_wait's harvest (ep_send_events): up to <paramref name="max"/> (events, data) pairs, oldest ready first.
    /// </summary>
    public List<(uint Events, ulong Data)> Harvest(int max)
    {
        CheckTimers();
        var result = new List<(uint, ulong)>();
        if (_ready.Count == 0) return result;
        var scan = _ready;
        _ready = [];
        foreach (var i in scan) i.Ready = false;
        var again = new List<EpollItem>();
        int at = 0;
        _scanning = true;
        try
        {
            for (; at < scan.Count && result.Count < max; at++)
            {
                var item = scan[at];
                _polling = item;
                PollEvents revents;
                try { revents = Poll(item); }
                finally { _polling = null; }
                if (revents == PollEvents.None) continue;
                result.Add(((uint)revents, item.Data));
                if ((item.Events & EPOLLONESHOT) != 0) item.Events &= PrivateBits;
                else if ((item.Events & EPOLLET) == 0) again.Add(item);
            }
        }
        finally
        {
            _scanning = false;
        }
        // Linux's order: the items not looked at, those woken meanwhile, then the level-triggered ones reported.
        var next = new List<EpollItem>(scan.Count - at + _overflow.Count + again.Count);
        for (int i = at; i < scan.Count; i++) next.Add(scan[i]);
        foreach (var i in _overflow) if (!next.Contains(i) && !again.Contains(i)) next.Add(i);
        next.AddRange(again);
        _overflow.Clear();
        foreach (var i in next) i.Ready = true;
        _ready = next;
        return result;
    }

    /// <summary>Readable while an item on the ready list really has events (items that do not are dropped, as Linux does).</summary>
    public override PollEvents Readiness()
    {
        CheckTimers();
        while (_ready.Count > 0)
        {
            var item = _ready[0];
            _polling = item;
            PollEvents revents;
            try { revents = Poll(item); }
            finally { _polling = null; }
            if (revents != PollEvents.None) return PollEvents.Readable;
            item.Ready = false;
            _ready.RemoveAt(0);
        }
        return PollEvents.None;
    }

    /// <summary>Whether <paramref name="target"/> is this epoll or one it watches, directly or through others (ELOOP).</summary>
    public bool Reaches(EpollFile target)
    {
        if (target == this) return true;
        foreach (var i in _items)
            if (i.File is EpollFile e && e.Reaches(target)) return true;
        return false;
    }

    /// <summary>Puts back an item as a checkpoint had it (no polling: the ready list is restored as it was).</summary>
    public EpollItem Restore(FileDescription file, int fd, uint events, ulong data)
    {
        var item = new EpollItem(this, file, fd) { Events = events, Data = data };
        Attach(item);
        return item;
    }

    public void RestoreReady(EpollItem item)
    {
        if (item.Ready) throw new InvalidDataException("epoll ready list");
        item.Ready = true;
        _ready.Add(item);
    }

    public override long Read(Span<byte> buffer, CancellationToken interrupt) => -Errno.EINVAL;
    public override long Write(ReadOnlySpan<byte> data) => -Errno.EINVAL;
    public override long Stat(Span<byte> st) => AnonInode.Stat(st);

    public override void Release()
    {
        foreach (var item in _items.ToArray()) Forget(item);
    }
}
