using System.Threading.Channels;

namespace Remus.Toolstack.Console;

/// <summary>
/// A domain's stdin: chunks posted by attached console clients (or the local terminal of <c>create -F</c>), read by
/// the program. Reads block until input arrives; pause and destroy interrupt them through the token.
/// </summary>
internal sealed class ConsoleInput
{
    private readonly Channel<byte[]> _chunks = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { SingleReader = true });
    private byte[]? _pending;
    private int _offset;

    /// <summary>Copies available input; blocks until there is some; 0 once <see cref="Complete"/> was called.</summary>
    public int Read(Span<byte> buffer, CancellationToken cancel)
    {
        if (buffer.Length == 0) return 0;
        while (_pending is null)
        {
            if (_chunks.Reader.TryRead(out var chunk))
            {
                if (chunk.Length == 0) continue;
                _pending = chunk;
                _offset = 0;
                break;
            }
            if (!_chunks.Reader.WaitToReadAsync(cancel).AsTask().GetAwaiter().GetResult()) return 0;
        }
        var n = Math.Min(buffer.Length, _pending.Length - _offset);
        _pending.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        if (_offset == _pending.Length) _pending = null;
        return n;
    }

    /// <summary>Queues input (waits while the program is not reading and the queue is full).</summary>
    public async ValueTask PostAsync(byte[] data, CancellationToken cancel = default)
    {
        try
        {
            await _chunks.Writer.WriteAsync(data, cancel).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            // Input has ended (the local terminal of create -F closed it): further input is dropped.
        }
    }

    /// <summary>Ends the input: the program reads end-of-file once the queue is drained.</summary>
    public void Complete() => _chunks.Writer.TryComplete();
}
