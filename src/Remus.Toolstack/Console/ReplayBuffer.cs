namespace Remus.Toolstack.Console;

/// <summary>
/// The last bytes a domain wrote (up to a capacity), with the stream of each, for console replay. A ring: the oldest
/// bytes give way to new ones, so a console no one reads costs exactly its capacity, and appending allocates nothing
/// (consecutive writes to one stream are one run; a new run is recorded only when the stream changes).
/// </summary>
internal sealed class ReplayBuffer
{
    private readonly byte[] _ring;
    private int _start, _size;
    private (int Stream, int Length)[] _runs = new (int, int)[4];
    private int _runStart, _runCount;

    public ReplayBuffer(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new byte[capacity];
    }

    /// <summary>Bytes kept now (never more than the capacity).</summary>
    public int Size => _size;

    public void Append(int stream, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0) return;
        int capacity = _ring.Length;
        if (data.Length > capacity) data = data[^capacity..];
        int excess = _size + data.Length - capacity;
        if (excess > 0) DropOldest(excess);
        int at = (_start + _size) % capacity;
        int first = Math.Min(data.Length, capacity - at);
        data[..first].CopyTo(_ring.AsSpan(at));
        data[first..].CopyTo(_ring);
        _size += data.Length;
        if (_runCount > 0 && Run(_runCount - 1).Stream == stream) Run(_runCount - 1).Length += data.Length;
        else AddRun(stream, data.Length);
    }

    public IReadOnlyList<(int Stream, byte[] Data)> Snapshot()
    {
        var chunks = new List<(int, byte[])>(_runCount);
        int offset = _start;
        for (int i = 0; i < _runCount; i++)
        {
            var (stream, length) = Run(i);
            var data = new byte[length];
            int first = Math.Min(length, _ring.Length - offset);
            _ring.AsSpan(offset, first).CopyTo(data);
            _ring.AsSpan(0, length - first).CopyTo(data.AsSpan(first));
            chunks.Add((stream, data));
            offset = (offset + length) % _ring.Length;
        }
        return chunks;
    }

    private void DropOldest(int bytes)
    {
        _start = (_start + bytes) % _ring.Length;
        _size -= bytes;
        while (bytes > 0)
        {
            ref var head = ref Run(0);
            if (head.Length > bytes)
            {
                head.Length -= bytes;
                return;
            }
            bytes -= head.Length;
            _runStart = (_runStart + 1) % _runs.Length;
            _runCount--;
        }
    }

    private ref (int Stream, int Length) Run(int i) => ref _runs[(_runStart + i) % _runs.Length];

    private void AddRun(int stream, int length)
    {
        if (_runCount == _runs.Length) // at most one run per byte kept: bounded by the capacity
        {
            var bigger = new (int, int)[_runs.Length * 2];
            for (int i = 0; i < _runCount; i++) bigger[i] = Run(i);
            _runs = bigger;
            _runStart = 0;
        }
        _runs[(_runStart + _runCount) % _runs.Length] = (stream, length);
        _runCount++;
    }
}
