namespace Remus.Simulation;

/// <summary>What a <see cref="FaultTap"/> does when its trigger's byte comes.</summary>
public enum TapAction
{
    /// <summary>Flip that byte (XOR with a seeded mask).</summary>
    Corrupt,
    /// <summary>End the stream just before that byte: the reader sees the bytes before it, then end of stream.</summary>
    Truncate,
    /// <summary>Cut the direction silently just before that byte.</summary>
    Silence,
    /// <summary>The writer's host dies just before that byte (the bytes before it were sent).</summary>
    Crash,
}

/// <summary>
/// A one-shot fault at a byte of a stream, located through the stream's framing (<see cref="StreamSniffer"/>):
/// <see cref="Locate"/> maps each record start to the absolute position of the byte to hit, or null.
/// </summary>
public sealed class TapTrigger(string name, Func<StreamSniffer.Event, long?> locate, TapAction action, byte mask = 0xFF)
{
    public string Name => name;
    public TapAction Action => action;
    public byte Mask => mask;
    internal long? At { get; set; }
    internal bool Fired { get; set; }
    internal long? Locate(StreamSniffer.Event e) => locate(e);
}

/// <summary>Applies <see cref="TapTrigger"/>s to the writes of one pipe.</summary>
public sealed class FaultTap(StreamSniffer sniffer, Action<TapTrigger, long> onFire, Action onCrash) : IWriteTap
{
    private readonly List<TapTrigger> _triggers = [];
    private readonly List<StreamSniffer.Event> _events = [];
    private long _position;

    public void Add(TapTrigger trigger)
    {
        lock (_triggers) _triggers.Add(trigger);
    }

    public void Write(ReadOnlySpan<byte> data, SimPipe pipe)
    {
        long start = _position;
        _position += data.Length;
        _events.Clear();
        sniffer.Feed(data, _events);
        TapTrigger[] triggers;
        lock (_triggers) triggers = [.. _triggers.Where(t => !t.Fired)];
        foreach (var e in _events)
            foreach (var t in triggers)
                if (t.At == null && t.Locate(e) is { } at) t.At = at;

        int done = 0;
        while (true)
        {
            TapTrigger? next = null;
            foreach (var t in triggers)
                if (!t.Fired && t.At is { } at && at < start + data.Length && (next == null || at < next.At)) next = t;
            if (next == null) break;
            int local = (int)Math.Clamp(next.At!.Value - start, done, data.Length);
            pipe.Enqueue(data[done..local]);
            done = local;
            next.Fired = true;
            onFire(next, next.At!.Value);
            switch (next.Action)
            {
                case TapAction.Corrupt:
                    if (done < data.Length)
                    {
                        pipe.Enqueue([(byte)(data[done] ^ next.Mask)]);
                        done++;
                    }
                    break;
                case TapAction.Truncate:
                    pipe.Close();
                    break;
                case TapAction.Silence:
                    pipe.Silence();
                    break;
                case TapAction.Crash:
                    onCrash();
                    throw new SimulatedCrashException($"crashed while writing {pipe.Name} ({next.Name})");
            }
        }
        pipe.Enqueue(data[done..]);
    }
}

/// <summary>Thrown on a side's own thread where the harness crashed it (from a step hook or a write).</summary>
public sealed class SimulatedCrashException(string message) : Exception(message);
