namespace Remus.Sandbox.Kernel.Signals;

/// <summary>
/// A set of pending signals with their siginfo, as Linux's <c>struct sigpending</c>: a standard signal (1-31) is
/// pending at most once (a second one while it is pending is lost), a real-time one (32-64) queues every instance.
/// </summary>
internal sealed class PendingSignals
{
    public const int SigRtMin = 32;
    private readonly List<SigInfo> _queue = [];

    /// <summary>Bit sig-1 set for each pending signal.</summary>
    public ulong Set { get; private set; }

    public bool Contains(int sig) => (Set & Bit(sig)) != 0;

    public static ulong Bit(int sig) => 1UL << (sig - 1);

    /// <summary>Adds one instance; false when a standard signal was already pending (and this one is lost).</summary>
    public bool Add(in SigInfo info)
    {
        if (info.Signo < SigRtMin && Contains(info.Signo)) return false;
        _queue.Add(info);
        Set |= Bit(info.Signo);
        return true;
    }

    /// <summary>Takes the first instance of <paramref name="sig"/>.</summary>
    public SigInfo Take(int sig)
    {
        int i = _queue.FindIndex(q => q.Signo == sig);
        SigInfo info = _queue[i];
        _queue.RemoveAt(i);
        if (!_queue.Exists(q => q.Signo == sig)) Set &= ~Bit(sig);
        return info;
    }

    /// <summary>The first queued instance of <paramref name="sig"/> (to update it, e.g. a timer's overrun).</summary>
    public int IndexOf(int sig, Predicate<SigInfo> match) => _queue.FindIndex(q => q.Signo == sig && match(q));

    public void Replace(int index, in SigInfo info) => _queue[index] = info;

    /// <summary>Drops every instance of the signals in <paramref name="mask"/>.</summary>
    public void Remove(ulong mask)
    {
        if ((Set & mask) == 0) return;
        _queue.RemoveAll(q => (Bit(q.Signo) & mask) != 0);
        Set &= ~mask;
    }

    public void Clear()
    {
        _queue.Clear();
        Set = 0;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_queue.Count);
        foreach (var q in _queue) q.Save(w);
    }

    public void Load(BinaryReader r)
    {
        Clear();
        int n = r.ReadInt32();
        if (n < 0 || n > 1 << 16) throw new SandboxException("corrupt kernel state in the checkpoint (pending signals)");
        for (int i = 0; i < n; i++)
        {
            var q = SigInfo.Load(r);
            if (q.Signo is < 1 or > 64) throw new SandboxException("corrupt kernel state in the checkpoint (pending signal)");
            _queue.Add(q);
            Set |= Bit(q.Signo);
        }
    }
}
