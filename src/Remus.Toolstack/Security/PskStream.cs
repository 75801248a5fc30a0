using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Remus.Toolstack.Security;

/// <summary>
/// The PSK channel after its handshake: every byte travels in AES-256-GCM frames,
/// <c>u32 length (big-endian) | ciphertext (length bytes) | tag (16)</c>, 1 &lt;= length &lt;= 64 KiB. The length is
/// the additional authenticated data; the nonce is the direction (u32: 1 connecting->accepting, 2 the other way) and
/// a 64-bit frame counter, so a replayed, reordered, dropped or altered frame fails its tag. The length is checked
/// before anything is read into the (preallocated) frame buffer: a 4 GiB length allocates nothing.
/// <para>Writes gather into one frame of up to 64 KiB (<see cref="Flush"/> sends a partial one); the write side and the
/// read side have buffers, keys and counters of their own, so one reader and one writer may run at once. After an
/// authentication failure the read side stays failed: it never returns data that did not pass its tag.</para>
/// <para>End of stream: the transport's EOF at a frame boundary reads as EOF (as plain TCP would: the Remus and
/// migration streams carry their own end records); EOF inside a frame is an <see cref="IOException"/>.</para>
/// </summary>
internal sealed class PskStream : Stream
{
    public const int MaxFrame = 64 * 1024;
    private const int LengthBytes = 4, TagBytes = 16, NonceBytes = 12;

    private readonly Stream _inner;
    private readonly string _peer;

    // Write side (the writer thread only).
    private readonly AesGcm _seal;
    private readonly uint _sendDirection;
    private ulong _sendCounter;
    private readonly byte[] _out = new byte[LengthBytes + MaxFrame + TagBytes];
    private int _pending;
    /// <summary>Held by the writer; Dispose from another thread flushes only if no write is under way.</summary>
    private readonly Lock _writing = new();

    // Read side (the reader thread only).
    private readonly AesGcm _open;
    private readonly uint _receiveDirection;
    private ulong _receiveCounter;
    private readonly byte[] _frame = new byte[MaxFrame + TagBytes];
    private readonly byte[] _plain = new byte[MaxFrame];
    private int _plainStart, _plainEnd;
    private ChannelAuthenticationException? _readFailure;

    private int _disposed;

    public PskStream(Stream inner, PskHandshake.Keys keys, string peer)
    {
        _inner = inner;
        _peer = peer;
        _seal = new AesGcm(keys.SendKey, TagBytes);
        _open = new AesGcm(keys.ReceiveKey, TagBytes);
        CryptographicOperations.ZeroMemory(keys.SendKey);
        CryptographicOperations.ZeroMemory(keys.ReceiveKey);
        _sendDirection = keys.SendDirection;
        _receiveDirection = keys.ReceiveDirection;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        lock (_writing)
        {
            while (!buffer.IsEmpty)
            {
                int n = Math.Min(buffer.Length, MaxFrame - _pending);
                buffer[..n].CopyTo(_out.AsSpan(LengthBytes + _pending));
                _pending += n;
                buffer = buffer[n..];
                if (_pending == MaxFrame) SendFrame();
            }
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        lock (_writing)
        {
            SendFrame();
            _inner.Flush();
        }
    }

    /// <summary>Seals what is pending, in place, and writes it as one frame.</summary>
    private void SendFrame()
    {
        if (_pending == 0) return;
        int n = _pending;
        _pending = 0;
        BinaryPrimitives.WriteUInt32BigEndian(_out, (uint)n);
        Span<byte> nonce = stackalloc byte[NonceBytes];
        MakeNonce(nonce, _sendDirection, _sendCounter++);
        Span<byte> body = _out.AsSpan(LengthBytes, n);
        _seal.Encrypt(nonce, body, body, _out.AsSpan(LengthBytes + n, TagBytes), _out.AsSpan(0, LengthBytes));
        _inner.Write(_out, 0, LengthBytes + n + TagBytes);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (buffer.IsEmpty) return 0;
        if (_readFailure is not null) throw new ChannelAuthenticationException(_readFailure.Message, _readFailure);
        if (_plainStart == _plainEnd)
        {
            int length = ReadFrameHeader();
            if (length == 0) return 0;
            // A frame that fits is opened straight into the caller's buffer; only its tag decides what it holds.
            if (buffer.Length >= length)
            {
                if (!OpenFrame(length, buffer[..length])) { buffer[..length].Clear(); throw _readFailure!; }
                return length;
            }
            if (!OpenFrame(length, _plain.AsSpan(0, length))) throw _readFailure!;
            _plainStart = 0;
            _plainEnd = length;
        }
        int copied = Math.Min(buffer.Length, _plainEnd - _plainStart);
        _plain.AsSpan(_plainStart, copied).CopyTo(buffer);
        _plainStart += copied;
        return copied;
    }

    /// <summary>Reads and checks a frame's length (0 at a clean end of stream) and then its body and tag.</summary>
    private int ReadFrameHeader()
    {
        Span<byte> header = stackalloc byte[LengthBytes];
        int got = _inner.ReadAtLeast(header, LengthBytes, throwOnEndOfStream: false);
        if (got == 0) return 0;
        if (got < LengthBytes) throw new IOException($"{_peer}: the channel ended inside a frame header");
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length is 0 or > MaxFrame)
            throw Fail($"{_peer}: frame {_receiveCounter} claims {length} bytes (at most {MaxFrame}): the channel was altered");
        header.CopyTo(_lengthAad);
        int body = (int)length + TagBytes;
        if (_inner.ReadAtLeast(_frame.AsSpan(0, body), body, throwOnEndOfStream: false) < body)
            throw new IOException($"{_peer}: the channel ended inside frame {_receiveCounter}");
        return (int)length;
    }

    private readonly byte[] _lengthAad = new byte[LengthBytes];

    private bool OpenFrame(int length, Span<byte> into)
    {
        Span<byte> nonce = stackalloc byte[NonceBytes];
        MakeNonce(nonce, _receiveDirection, _receiveCounter);
        try
        {
            _open.Decrypt(nonce, _frame.AsSpan(0, length), _frame.AsSpan(length, TagBytes), into, _lengthAad);
        }
        catch (AuthenticationTagMismatchException e)
        {
            Fail($"{_peer}: frame {_receiveCounter} failed its authentication tag: the channel was altered, reordered, cut or replayed", e);
            return false;
        }
        _receiveCounter++;
        return true;
    }

    private ChannelAuthenticationException Fail(string message, Exception? inner = null) =>
        _readFailure = new ChannelAuthenticationException(message, inner);

    private static void MakeNonce(Span<byte> nonce, uint direction, ulong counter)
    {
        BinaryPrimitives.WriteUInt32BigEndian(nonce, direction);
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], counter);
    }

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
                try { SendFrame(); _inner.Flush(); }
                catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException or CryptographicException) { }
                finally { _writing.Exit(); }
            }
            _inner.Dispose();
            _seal.Dispose();
            _open.Dispose();
        }
        base.Dispose(disposing);
    }
}
