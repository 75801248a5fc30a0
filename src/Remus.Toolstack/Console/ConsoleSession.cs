using System.Buffers.Binary;
using System.Threading.Channels;
using Remus.Toolstack.Control;

namespace Remus.Toolstack.Console;

/// <summary>
/// One attached console client, VMM side: the frames queued for it (written by a pump, so a slow client never
/// blocks the program) and its keystrokes, forwarded to the domain's input.
/// </summary>
internal sealed class ConsoleSession(Stream connection)
{
    /// <summary>A client that falls this far behind is disconnected.</summary>
    private const long MaxQueuedBytes = 16 << 20;

    private readonly Channel<byte[]> _frames = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private long _queued;

    /// <summary>Queues output; false when the client is too far behind (the caller drops it).</summary>
    public bool Send(ConsoleFrameKind kind, ReadOnlySpan<byte> body)
    {
        var frame = new byte[ControlProtocol.FrameHeaderBytes + body.Length];
        ControlProtocol.WriteFrameHeader(frame, kind, body.Length);
        body.CopyTo(frame.AsSpan(ControlProtocol.FrameHeaderBytes));
        if (Interlocked.Add(ref _queued, frame.Length) > MaxQueuedBytes)
        {
            _frames.Writer.TryComplete();
            return false;
        }
        return _frames.Writer.TryWrite(frame);
    }

    /// <summary>Queues the exit frame, the last one.</summary>
    public void Finish(int exitStatus)
    {
        Span<byte> body = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(body, exitStatus);
        Send(ConsoleFrameKind.Exit, body);
        _frames.Writer.TryComplete();
    }

    /// <summary>Writes queued frames until the session is finished or the client goes away.</summary>
    public async Task PumpOutputAsync()
    {
        try
        {
            await foreach (var frame in _frames.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                await connection.WriteAsync(frame).ConfigureAwait(false);
                Interlocked.Add(ref _queued, -frame.Length);
            }
            await connection.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The client went away.
        }
    }

    /// <summary>Forwards what the client types to the domain's input until the client stops sending.</summary>
    public async Task PumpInputAsync(ConsoleInput input)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await connection.ReadAsync(buffer).ConfigureAwait(false);
                if (n == 0) return;
                await input.PostAsync(buffer[..n]).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The client went away.
        }
    }
}
