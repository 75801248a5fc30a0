using System.Collections.Concurrent;
using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint;

/// <summary>
/// Reads the back channel on a thread of its own, so the sender can wait for an ack with a timeout on any kind of
/// stream (a socket, or the stdout pipe of an ssh process, which has no read timeout) without tying up a pool
/// thread per wait. It keeps reading until the channel ends, so the peer's late records are drained rather than
/// left unread (closing a socket with unread bytes resets the connection, which can discard what the peer has not
/// read yet). A TAKEOVER is also signalled at once through <see cref="TakeoverSeen"/>.
/// </summary>
internal sealed class AckPump : IDisposable
{
    private readonly BlockingCollection<(BackRecord Record, Exception? Error)> _items = new();
    private readonly ManualResetEventSlim _takeover = new();
    private readonly AckReader _reader;
    private volatile bool _disposed;

    public AckPump(System.IO.Stream back)
    {
        _reader = new AckReader(back);
        new Thread(Pump) { IsBackground = true, Name = "ack-reader" }.Start();
    }

    /// <summary>Set once the backup said TAKEOVER (whether or not anybody has taken that record yet).</summary>
    public WaitHandle TakeoverSeen => _takeover.WaitHandle;

    public bool IsTakeoverSeen => _takeover.IsSet;

    private void Pump()
    {
        try
        {
            while (true)
            {
                var record = _reader.ReadNext();
                if (record.Kind == BackRecordKind.Takeover) _takeover.Set();
                if (!_disposed) _items.Add((record, null));
                if (record.Kind is BackRecordKind.End or BackRecordKind.Released or BackRecordKind.Takeover) return;
            }
        }
        catch (ObjectDisposedException)
        {
            // Nobody waits any more.
        }
        catch (InvalidOperationException)
        {
            // Disposed while adding.
        }
        catch (Exception e)
        {
            try { if (!_disposed) _items.Add((default, e)); }
            catch (Exception) { /* nobody waits any more */ }
        }
    }

    /// <summary>The next record (never a heartbeat); throws the reader's error, or TimeoutException.</summary>
    public BackRecord NextRecord(TimeSpan timeout, string what)
    {
        if (!_items.TryTake(out var item, timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout))
            throw new TimeoutException($"timed out after {timeout.TotalMilliseconds:F0} ms waiting for {what}");
        if (item.Error != null) throw item.Error;
        return item.Record;
    }

    /// <summary>The next ack, or null at END; throws the reader's error, TimeoutException, or on any other record.</summary>
    public Ack? Next(TimeSpan timeout, string what)
    {
        var record = NextRecord(timeout, what);
        return record.Kind switch
        {
            BackRecordKind.Ack => record.Ack,
            BackRecordKind.End => null,
            _ => throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                $"unexpected {record.Kind.ToString().ToUpperInvariant()} on the back channel while waiting for {what}"),
        };
    }

    public void Dispose()
    {
        _disposed = true;
        _items.Dispose(); // _takeover stays: a late-takeover watch may still wait on it
    }
}
