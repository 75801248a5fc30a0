namespace Remus.Toolstack.Console;

/// <summary>The last bytes a domain wrote (up to a capacity), with the stream of each, for console replay.</summary>
internal sealed class ReplayBuffer(int capacity)
{
    private readonly LinkedList<(int Stream, byte[] Data)> _chunks = new();
    private int _size;

    public void Append(int stream, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0) return;
        if (data.Length > capacity) data = data[^capacity..];
        _chunks.AddLast((stream, data.ToArray()));
        _size += data.Length;
        while (_size > capacity)
        {
            var first = _chunks.First!;
            var excess = _size - capacity;
            if (first.Value.Data.Length <= excess)
            {
                _size -= first.Value.Data.Length;
                _chunks.RemoveFirst();
            }
            else
            {
                first.Value = (first.Value.Stream, first.Value.Data[excess..]);
                _size -= excess;
            }
        }
    }

    public IReadOnlyList<(int Stream, byte[] Data)> Snapshot() => [.. _chunks];
}
