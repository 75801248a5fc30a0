namespace Remus.Toolstack.Security;

/// <summary>
/// A pass-through stream that remembers the first bytes the peer sent during a handshake, so that a failed handshake
/// can say what the peer is: a TLS client starts with a handshake record (0x16 0x03), a Remus PSK peer with
/// "REMUSPSK", an unprotected Remus stream with "REMUSCKP".
/// </summary>
internal sealed class FirstBytes(Stream inner) : Stream
{
    private readonly byte[] _seen = new byte[8];
    private int _count;

    public ReadOnlySpan<byte> Seen => _seen.AsSpan(0, _count);

    /// <summary>What the peer looks like from its first bytes, for messages; null when it sent nothing.</summary>
    public string? Describe()
    {
        ReadOnlySpan<byte> s = Seen;
        if (s.Length == 0) return null;
        if (s[0] == 0x16) return "it speaks TLS (--tls-cert/--tls-key/--tls-ca on its side?)";
        if (s.StartsWith("REMUSPSK"u8[..Math.Min(s.Length, 8)]) ) return "it speaks the Remus pre-shared key protocol (--psk-file on its side?)";
        if (s.StartsWith("REMUSCKP"u8[..Math.Min(s.Length, 8)])) return "it sent an unprotected Remus stream (--insecure on its side?)";
        return $"it sent {Convert.ToHexString(s)}";
    }

    private void Remember(ReadOnlySpan<byte> got)
    {
        int n = Math.Min(got.Length, _seen.Length - _count);
        if (n > 0) { got[..n].CopyTo(_seen.AsSpan(_count)); _count += n; }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        Remember(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Remember(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
