using System.Diagnostics;

namespace Remus.Simulation;

/// <summary>
/// One direction of the in-memory channel between the primary and the backup, with the faults of a real link:
/// <see cref="Silence"/> (a cut: the writer's writes still succeed, the reader hears nothing more),
/// <see cref="Close"/> (the reader sees end of stream, the writer an error), <see cref="Reset"/>, a
/// <see cref="Delay"/> on every byte written from now on (order kept), and a <see cref="Tap"/> that sees each write
/// first (corrupt a byte, end the stream or crash the writer at a chosen offset). The ends belong to nodes: once the
/// writing node crashed its writes fail, and what its reader end gets depends on how it died.
/// </summary>
public sealed class SimPipe
{
    private readonly object _lock = new();
    private readonly Queue<(byte[] Data, long DeliverAt)> _queue = new();
    private int _headOffset;
    private long _lastDeliverAt;
    private long _delayTicks;
    private bool _silenced, _eof, _brokenForWriter, _readerDisposed, _readerGoneSilently;
    private long _written, _delivered;

    public SimPipe(string name, Node writer, Node reader)
    {
        Name = name;
        WriterNode = writer;
        ReaderNode = reader;
        Writer = new WriterEnd(this);
        Reader = new ReaderEnd(this);
        writer.Owns(this);
        reader.Owns(this);
    }

    public string Name { get; }
    public Node WriterNode { get; }
    public Node ReaderNode { get; }

    /// <summary>The writer's end (give it to the node that writes this direction).</summary>
    public System.IO.Stream Writer { get; }

    /// <summary>The reader's end.</summary>
    public System.IO.Stream Reader { get; }

    /// <summary>Sees every write before it enters the pipe (set before the run starts).</summary>
    public IWriteTap? Tap { get; set; }

    public long BytesWritten { get { lock (_lock) return _written; } }
    public long BytesDelivered { get { lock (_lock) return _delivered; } }

    /// <summary>From now on every byte written is held <paramref name="delay"/> before the reader may see it.</summary>
    public void Delay(TimeSpan delay)
    {
        lock (_lock) _delayTicks = (long)(delay.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>A cut: everything from now on (and in flight) is dropped; the writer does not notice.</summary>
    public void Silence()
    {
        lock (_lock)
        {
            _silenced = true;
            _queue.Clear();
            _headOffset = 0;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The reader sees end of stream after what is in flight; the writer's next write fails.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _eof = _brokenForWriter = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Connection reset: what is in flight is lost, the reader sees end of stream, the writer an error.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _queue.Clear();
            _headOffset = 0;
            _eof = _brokenForWriter = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The writing node died: killed (its kernel closes the connection: EOF after what is in flight) or powered off (silence).</summary>
    internal void WriterDied(bool killed)
    {
        lock (_lock)
        {
            if (killed) _eof = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The reading node died: the writer's next writes fail (killed: reset) or vanish (powered off).</summary>
    internal void ReaderDied(bool killed)
    {
        lock (_lock)
        {
            _queue.Clear();
            _headOffset = 0;
            if (killed) _brokenForWriter = true;
            else _readerGoneSilently = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Puts bytes in flight (the tap calls this for what it lets through).</summary>
    public void Enqueue(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (WriterNode.Dead) throw new IOException($"{Name}: the writer's host is down");
            if (_brokenForWriter) throw new IOException($"{Name}: connection reset by peer");
            _written += data.Length;
            if (data.Length == 0 || _silenced || _readerGoneSilently) return;
            long now = Stopwatch.GetTimestamp();
            long at = Math.Max(now + _delayTicks, _lastDeliverAt);
            _lastDeliverAt = at;
            _queue.Enqueue((data.ToArray(), at));
            Monitor.PulseAll(_lock);
        }
    }

    private int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        lock (_lock)
        {
            while (true)
            {
                if (_readerDisposed) throw new ObjectDisposedException(Name, $"{Name}: the reader's end is closed");
                if (ReaderNode.Dead) throw new IOException($"{Name}: the reader's host is down");
                if (_queue.Count > 0)
                {
                    var (data, at) = _queue.Peek();
                    long wait = at - Stopwatch.GetTimestamp();
                    if (wait <= 0)
                    {
                        int n = Math.Min(buffer.Length, data.Length - _headOffset);
                        data.AsSpan(_headOffset, n).CopyTo(buffer);
                        _headOffset += n;
                        if (_headOffset == data.Length) { _queue.Dequeue(); _headOffset = 0; }
                        _delivered += n;
                        return n;
                    }
                    Monitor.Wait(_lock, TimeSpan.FromSeconds(Math.Max((double)wait / Stopwatch.Frequency, 0.0005)));
                    continue;
                }
                if (_eof) return 0;
                Monitor.Wait(_lock, 100);
            }
        }
    }

    private void DisposeReader()
    {
        lock (_lock)
        {
            _readerDisposed = true;
            _brokenForWriter = true; // a closed reading end: the writer gets EPIPE
            _queue.Clear();
            _headOffset = 0;
            Monitor.PulseAll(_lock);
        }
    }

    private void DisposeWriter()
    {
        lock (_lock)
        {
            _eof = true;
            Monitor.PulseAll(_lock);
        }
    }

    private sealed class WriterEnd(SimPipe pipe) : System.IO.Stream
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (pipe.Tap is { } tap) tap.Write(buffer, pipe);
            else pipe.Enqueue(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() { }
        protected override void Dispose(bool disposing)
        {
            if (disposing) pipe.DisposeWriter();
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class ReaderEnd(SimPipe pipe) : System.IO.Stream
    {
        public override int Read(Span<byte> buffer) => pipe.Read(buffer);
        public override int Read(byte[] buffer, int offset, int count) => pipe.Read(buffer.AsSpan(offset, count));
        protected override void Dispose(bool disposing)
        {
            if (disposing) pipe.DisposeReader();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override void Flush() { }
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Sees each write to a pipe first: lets bytes through with <see cref="SimPipe.Enqueue"/>, changed or not, or throws (a crash).</summary>
public interface IWriteTap
{
    void Write(ReadOnlySpan<byte> data, SimPipe pipe);
}
