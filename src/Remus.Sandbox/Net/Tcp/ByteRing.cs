namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// A ring of bytes with a maximum capacity, allocated as it fills (an idle connection holds no buffer) and charged to
/// the layer's <see cref="BufferBudget"/>. Bytes [0, Count) are the stream's head; bytes beyond Count may be written
/// at an offset (out-of-order data) and committed later.
/// </summary>
internal sealed class ByteRing(BufferBudget budget, int capacity)
{
    private byte[] _buf = [];
    private int _head;

    public int Capacity { get; set; } = capacity;
    public int Count { get; private set; }
    public int Allocated => _buf.Length;

    /// <summary>Makes room for <paramref name="size"/> bytes from the head; false when the capacity or the budget forbid it.</summary>
    public bool Ensure(int size)
    {
        if (size <= _buf.Length) return true;
        if (size > Math.Max(Capacity, Count)) return false;
        int n = Math.Max(4096, _buf.Length);
        while (n < size) n *= 2;
        n = Math.Min(n, Math.Max(Capacity, size));
        if (!budget.TryTake(n - _buf.Length)) return false;
        var nb = new byte[n];
        // Linearize: everything the old ring held (also bytes beyond Count), from the head.
        if (_buf.Length > 0)
        {
            int first = _buf.Length - _head;
            _buf.AsSpan(_head).CopyTo(nb);
            _buf.AsSpan(0, _head).CopyTo(nb.AsSpan(first));
        }
        budget.Give(_buf.Length);
        _buf = nb;
        _head = 0;
        return true;
    }

    /// <summary>Writes at <paramref name="offset"/> from the head (no change to Count); false when it does not fit.</summary>
    public bool WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        if (!Ensure(offset + data.Length)) return false;
        int pos = (_head + offset) % _buf.Length;
        int first = Math.Min(data.Length, _buf.Length - pos);
        data[..first].CopyTo(_buf.AsSpan(pos));
        data[first..].CopyTo(_buf);
        return true;
    }

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the count taken.</summary>
    public int Append(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Capacity - Count);
        if (n <= 0) return 0;
        if (!Ensure(Count + n))
        {
            n = Math.Min(n, _buf.Length - Count);
            if (n <= 0) return 0;
        }
        WriteAt(Count, data[..n]);
        Count += n;
        return n;
    }

    /// <summary>Makes <paramref name="n"/> bytes already written past Count part of the head.</summary>
    public void Commit(int n) => Count += n;

    /// <summary>Copies bytes from <paramref name="offset"/> into <paramref name="dest"/> (no consume).</summary>
    public void Peek(int offset, Span<byte> dest)
    {
        if (dest.Length == 0) return;
        int pos = (_head + offset) % _buf.Length;
        int first = Math.Min(dest.Length, _buf.Length - pos);
        _buf.AsSpan(pos, first).CopyTo(dest);
        _buf.AsSpan(0, dest.Length - first).CopyTo(dest[first..]);
    }

    public void Consume(int n)
    {
        if (n <= 0 || _buf.Length == 0) return;
        Count -= n;
        _head = (_head + n) % _buf.Length;
    }

    public void Release()
    {
        budget.Give(_buf.Length);
        _buf = [];
        _head = 0;
        Count = 0;
    }
}

/// <summary>The layer-wide cap on buffer memory (all connections' send and receive buffers together).</summary>
internal sealed class BufferBudget(long limit)
{
    public long Limit { get; set; } = limit;
    public long InUse { get; private set; }

    public bool TryTake(long n)
    {
        if (InUse + n > Limit) return false;
        InUse += n;
        return true;
    }

    public void Give(long n) => InUse -= n;

    /// <summary>Forgets every charge (the buffers that held them were dropped: a snapshot replaced the layer's state).</summary>
    public void Reset() => InUse = 0;
}
