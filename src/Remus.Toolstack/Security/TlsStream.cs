namespace Remus.Toolstack.Security;

/// <summary>
/// The TLS channel after its handshake: a full-duplex stream over the <see cref="System.Net.Security.SslStream"/> that
/// gathers small writes into one write of up to <see cref="Capacity"/> bytes (so a record header written on its own is
/// not a TLS record of its own) and passes reads straight through. The write buffer belongs to the writer alone: one
/// reader thread and one writer thread may use the stream at once (System.IO.BufferedStream shares one buffer between
/// both and cannot). <see cref="Flush"/> sends what is buffered.
/// <para>A record that fails TLS's integrity check (an IOException from SslStream whose cause is TLS, not the socket)
/// is a <see cref="ChannelAuthenticationException"/>, and the read side stays failed; a broken or reset connection
/// stays an <see cref="IOException"/>, and the end of the stream reads as the end.</para>
/// </summary>
internal sealed class TlsStream(Stream inner, string peer) : Stream
{
    public const int Capacity = 64 * 1024;

    private readonly byte[] _buffer = new byte[Capacity];
    private int _buffered;
    private int _disposed;
    /// <summary>Held by the writer; Dispose from another thread flushes only if no write is under way.</summary>
    private readonly Lock _writing = new();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        lock (_writing) WriteLocked(buffer);
    }

    private void WriteLocked(ReadOnlySpan<byte> buffer)
    {
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
        lock (_writing)
        {
            SendBuffered();
            inner.Flush();
        }
    }

    private void SendBuffered()
    {
        if (_buffered == 0) return;
        int n = _buffered;
        _buffered = 0;
        inner.Write(_buffer, 0, n);
    }

    private ChannelAuthenticationException? _readFailure;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_readFailure is not null) throw new ChannelAuthenticationException(_readFailure.Message, _readFailure);
        try { return inner.Read(buffer); }
        catch (IOException e) when (IsTlsFailure(e)) { throw Fail(e); }
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_readFailure is not null) throw new ChannelAuthenticationException(_readFailure.Message, _readFailure);
        try { return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
        catch (IOException e) when (IsTlsFailure(e)) { throw Fail(e); }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>SslStream wraps a failed decryption (OpenSSL: "decryption failed or bad record mac") in an IOException
    /// whose cause is not the socket's.</summary>
    private static bool IsTlsFailure(IOException e) =>
        e.InnerException is not null and not System.Net.Sockets.SocketException and not IOException;

    private ChannelAuthenticationException Fail(IOException e) => _readFailure =
        new ChannelAuthenticationException($"{peer}: a TLS record failed its integrity check, the channel was altered: {HandshakeDeadline.OneLine(e)}", e);

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
            // Best effort: a writer blocked on a peer that does not read holds the lock, and closing ends its write.
            if (_writing.TryEnter())
            {
                try { SendBuffered(); inner.Flush(); }
                catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException) { }
                finally { _writing.Exit(); }
            }
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
