using System.Diagnostics;
using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint;

/// <summary>
/// Reads the back channel on a thread of its own, so the sender can wait for an ack with a timeout on any kind of
/// stream (a socket, or the stdout pipe of an ssh process, which has no read timeout) without tying up a pool
/// thread per wait. It keeps reading until the channel ends, so the peer's late records are drained rather than
/// left unread (closing a socket with unread bytes resets the connection, which can discard what the peer has not
/// read yet). A TAKEOVER is also signalled at once through <see cref="TakeoverSeen"/>.
/// A wait allocates nothing (a queue under a lock, woken by Monitor.Pulse): the epoch loop waits here once per epoch,
/// and a BlockingCollection's timed take made a linked CancellationTokenSource each time (issue 14: the epoch loop
/// allocates nothing).
/// </summary>
internal sealed class AckPump : IDisposable
{
    private readonly Queue<(BackRecord Record, Exception? Error)> _items = new(); // under its own lock
    private bool _closed; // disposed: nothing more is queued or taken
    private readonly ManualResetEventSlim _takeover = new();
    private readonly AckReader _reader;

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
                Add((record, null));
                if (record.Kind is BackRecordKind.End or BackRecordKind.Released or BackRecordKind.Takeover) return;
            }
        }
        catch (ObjectDisposedException)
        {
            // Nobody waits any more.
        }
        catch (Exception e)
        {
            Add((default, e));
        }
    }

    private void Add((BackRecord, Exception?) item)
    {
        lock (_items)
        {
            if (_closed) return;
            _items.Enqueue(item);
            Monitor.Pulse(_items);
        }
    }

    /// <summary>The next record (never a heartbeat); throws the reader's error, or TimeoutException.</summary>
    public BackRecord NextRecord(TimeSpan timeout, string what) => NextRecord(timeout, what, null);

    /// <summary>
    /// <see cref="NextRecord(TimeSpan, string)"/> for the ack of epoch <paramref name="epoch"/>: what is waited for is
    /// put into words only if the wait times out.
    /// </summary>
    public BackRecord NextAck(TimeSpan timeout, ulong epoch) => NextRecord(timeout, null, epoch);

    private BackRecord NextRecord(TimeSpan timeout, string? what, ulong? ackOf)
    {
        (BackRecord Record, Exception? Error) item;
        lock (_items)
        {
            long deadline = Stopwatch.GetTimestamp() + (long)(Math.Clamp(timeout.TotalSeconds, 0, 1e6) * Stopwatch.Frequency); // at most 11 days: in range for Monitor.Wait
            while (_items.Count == 0)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                long left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                    throw new TimeoutException($"timed out after {timeout.TotalMilliseconds:F0} ms waiting for " +
                                               (what ?? $"the backup's acknowledgement of epoch {ackOf}"));
                Monitor.Wait(_items, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            }
            item = _items.Dequeue();
        }
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
        lock (_items) // _takeover stays: a late-takeover watch may still wait on it
        {
            _closed = true;
            _items.Clear();
            Monitor.PulseAll(_items);
        }
    }
}
