using System.Buffers.Binary;
using System.IO.Hashing;

namespace Remus.Checkpoint.Stream;

/// <summary>
/// Exact reads from a possibly non-seekable stream that may return fewer bytes than asked (sockets, pipes).
/// Never reads past what the current record needs, so a stream may carry other data after END.
/// </summary>
internal sealed class RecordInput(System.IO.Stream stream)
{
    private readonly byte[] _scratch = new byte[16];

    public System.IO.Stream Stream { get; } = stream;

    /// <summary>Bytes consumed so far.</summary>
    public long Position { get; private set; }

    /// <summary>Fills <paramref name="buffer"/> or throws <see cref="CheckpointStreamError.Truncated"/> naming <paramref name="what"/>.</summary>
    /// <param name="moreAfter">Bytes of the same item that follow <paramref name="buffer"/> (for the message).</param>
    public void ReadExactly(Span<byte> buffer, string what, long moreAfter = 0)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = Stream.Read(buffer[done..]);
            if (n <= 0)
                throw new CheckpointStreamException(CheckpointStreamError.Truncated,
                    $"truncated stream: expected {buffer.Length - done + moreAfter} more bytes of {what}");
            done += n;
            Position += n;
        }
    }

    /// <summary>
    /// Reads a record frame (type, length; in version 2 also its check, verified here, before the length is
    /// trusted); a stream that ends here ended without END. <paramref name="header"/> is the frame's size.
    /// </summary>
    public void ReadRecordHeader(Span<byte> header)
    {
        long at = Position;
        ReadExactly(header, "record header (the stream ended without an END record)");
        if (header.Length == StreamFormat.CheckedRecordHeaderSize) RecordHeader.Verify(header, at);
    }

    /// <summary>Reads and checks the zero padding that follows a body of <paramref name="bodyLength"/> bytes.</summary>
    public void ReadPadding(long bodyLength, RecordType type, NonCryptographicHashAlgorithm? hash)
    {
        int pad = StreamFormat.PaddingFor(bodyLength);
        if (pad == 0) return;
        Span<byte> padding = _scratch.AsSpan(0, pad);
        ReadExactly(padding, $"record {StreamFormat.Name(type)} (padding)");
        hash?.Append(padding);
        if (padding.ContainsAnyExcept((byte)0))
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record {StreamFormat.Name(type)}: padding bytes are not zero");
    }

    /// <summary>
    /// Validates a record header's type and length against the format's limits, before anything is allocated.
    /// </summary>
    public static (RecordType Type, uint Length) ParseRecordHeader(ReadOnlySpan<byte> header)
    {
        uint rawType = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        var type = (RecordType)rawType;
        long max = StreamFormat.MaxBodyLength(type);
        if (max < 0)
            throw new CheckpointStreamException(CheckpointStreamError.UnknownRecord, $"unknown record type 0x{rawType:x}");
        bool fixedSize = type is RecordType.End or RecordType.CheckpointEnd or RecordType.Heartbeat or RecordType.Ack
            or RecordType.Hello or RecordType.Released or RecordType.Takeover;
        if (fixedSize && length != max)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record {StreamFormat.Name(type)} has length {length} (must be {max})");
        if (type == RecordType.Exit && length < StreamFormat.ExitFixedLength)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record EXIT has length {length} (at least {StreamFormat.ExitFixedLength})");
        if (type == RecordType.VolumeOps && length < StreamFormat.MinVolumeOpsLength)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record VOLUME_OPS has length {length} (at least {StreamFormat.MinVolumeOpsLength})");
        if (length > max)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record {StreamFormat.Name(type)} length {length} exceeds the limit of {max}");
        return (type, length);
    }

    /// <summary>
    /// Reads an opaque body of <paramref name="length"/> bytes. Large bodies are read in growing steps, so a bogus
    /// length on a short stream costs memory in proportion to the bytes really there, not to the claim.
    /// </summary>
    public byte[] ReadBlob(int length, string what)
    {
        const int step = 1 << 20;
        if (length <= step)
        {
            var small = new byte[length];
            ReadExactly(small, what);
            return small;
        }
        var buffer = new byte[step];
        int filled = 0;
        while (filled < length)
        {
            if (filled == buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, length));
            int chunk = Math.Min(buffer.Length - filled, length - filled);
            ReadExactly(buffer.AsSpan(filled, chunk), what, length - filled - chunk);
            filled += chunk;
        }
        return buffer;
    }
}
