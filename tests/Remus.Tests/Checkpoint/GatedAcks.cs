namespace Remus.Tests.Checkpoint;

/// <summary>
/// A back channel whose bytes are read from the socket as usual but handed to the primary only while the gate is
/// open: a backup that is alive and has acked, but whose acks are late.
/// </summary>
public sealed class GatedAcks(System.IO.Stream inner) : System.IO.Stream
{
    private readonly ManualResetEventSlim _open = new(true);
    public void Withhold() => _open.Reset();
    public void Open() => _open.Set();

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _open.Wait();
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    public override void Flush() => inner.Flush();
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
