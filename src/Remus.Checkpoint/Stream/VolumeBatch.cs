using System.Buffers;

namespace Remus.Checkpoint.Stream;

/// <summary>The body of one VOLUME_OPS record as a reader buffered it: a pooled buffer, returned when the epoch is disposed.</summary>
internal sealed class VolumeBatch
{
    private byte[]? _buffer;

    private VolumeBatch(byte[] buffer, int length)
    {
        _buffer = buffer;
        Length = length;
    }

    public static VolumeBatch Rent(int length) => new(ArrayPool<byte>.Shared.Rent(length), length);

    public int Length { get; }

    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(VolumeBatch));

    public ReadOnlyMemory<byte> Body => Buffer.AsMemory(0, Length);

    public void Release()
    {
        if (_buffer is { } buffer) ArrayPool<byte>.Shared.Return(buffer);
        _buffer = null;
    }
}
