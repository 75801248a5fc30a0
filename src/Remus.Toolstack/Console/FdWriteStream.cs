namespace Remus.Toolstack.Console;

/// <summary>
/// A write-only stream on one of our file descriptors that uses write(2) itself. (A FileStream on fd 1 would pwrite
/// at its own idea of the offset when stdout is a regular file, overwriting what other processes appended.)
/// A reader that went away (EPIPE) makes writes throw <see cref="OutputClosedException"/>.
/// </summary>
public sealed class FdWriteStream(int fd) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!FdIo.WriteAll(fd, buffer)) throw new OutputClosedException(fd);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>Our stdout or stderr is gone (its reader exited, as with `remus list | head -1`).</summary>
public sealed class OutputClosedException(int fd) : IOException($"cannot write to fd {fd}");
