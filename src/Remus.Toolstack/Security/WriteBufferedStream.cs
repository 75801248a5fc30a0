namespace Remus.Toolstack.Security;

/// <summary>
/// A full-duplex stream over a protected one (an <see cref="System.Net.Security.SslStream"/>) that gathers small writes
/// into one write of up to <see cref="Capacity"/> bytes (so a record header written on its own is not a TLS record of
/// its own) and passes reads straight through. The write buffer belongs to the writer alone: one reader thread and
/// one writer thread may use the stream at once (System.IO.BufferedStream shares one buffer between both and cannot).
/// <see cref="Flush"/> sends what is buffered.
/// </summary>
internal sealed class WriteBufferedStream(Stream inner) : Stream
{
    public const int Capacity = 64 * 1024;

    private readonly byte[] _buffer = new byte[Capacity];
    private int _buffered;
    private int _disposed;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_buffered > 0)
        {
            int n = Math.Min(buffer.Length, Capacity - _buffered);
            buffer[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            buffer = buffer[n..];
            if (_buffered < Capacity) return;
            SendBuffered();
        }
        if (buffer.Length >= Capacity)
        {
            inner.Write(buffer); // large writes go through as they are
            return;
        }
        buffer.CopyTo(_buffer);
        _buffered = buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        SendBuffered();
        inner.Flush();
    }

    private void SendBuffered()
    {
        if (_buffered == 0) return;
        int n = _buffered;
        _buffered = 0;
        inner.Write(_buffer, 0, n);
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override int ReadByte() => inner.ReadByte();
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override bool CanRead => _disposed == 0;
    public override bool CanSeek => false;
    public override bool CanWrite => _disposed == 0;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            try { SendBuffered(); inner.Flush(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException) { }
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
