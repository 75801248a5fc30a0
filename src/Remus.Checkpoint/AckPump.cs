using System.Collections.Concurrent;
using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint;

/// <summary>
/// Reads the back channel on a thread of its own, so the sender can wait for an ack with a timeout on any kind of
/// stream (a socket, or the stdout pipe of an ssh process, which has no read timeout) without tying up a pool
/// thread per wait. A null item means the receiver ended the back channel (END); an error is rethrown to the waiter.
/// </summary>
internal sealed class AckPump : IDisposable
{
    private readonly BlockingCollection<(Ack? Ack, Exception? Error)> _items = new();
    private readonly AckReader _reader;

    public AckPump(System.IO.Stream back)
    {
        _reader = new AckReader(back);
        new Thread(Pump) { IsBackground = true, Name = "ack-reader" }.Start();
    }

    private void Pump()
    {
        try
        {
            while (true)
            {
                var ack = _reader.ReadAck();
                _items.Add((ack, null));
                if (ack == null) return;
            }
        }
        catch (ObjectDisposedException)
        {
            // Nobody waits any more.
        }
        catch (Exception e)
        {
            try { _items.Add((null, e)); }
            catch (Exception) { /* nobody waits any more */ }
        }
    }

    /// <summary>The next ack, or null at END; throws the reader's error, or TimeoutException.</summary>
    public Ack? Next(TimeSpan timeout, string what)
    {
        if (!_items.TryTake(out var item, timeout))
            throw new TimeoutException($"timed out after {timeout.TotalMilliseconds:F0} ms waiting for {what}");
        if (item.Error != null) throw item.Error;
        return item.Ack;
    }

    public void Dispose() => _items.Dispose();
}
