namespace Remus.Checkpoint.Stream;

/// <summary>
/// The base of a forward-only stream that can only be read (a channel's receiving end, a wrapper that watches one):
/// a subclass supplies <see cref="Read(Span{byte})"/>; everything a read-only, unseekable stream refuses is here.
/// </summary>
public abstract class ReadOnlyStream : System.IO.Stream
{
    public abstract override int Read(Span<byte> buffer);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
