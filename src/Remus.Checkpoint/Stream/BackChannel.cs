using System.Buffers.Binary;

namespace Remus.Checkpoint.Stream;

/// <summary>
/// An acknowledgement: the backup received, verified and stored epoch <paramref name="Epoch"/>, whose checksum
/// was <paramref name="Checksum"/>. The primary compares both with its <see cref="EpochSummary"/>.
/// </summary>
public readonly record struct Ack(ulong Epoch, ulong Checksum)
{
    /// <summary>Whether this acknowledges exactly the epoch <paramref name="sent"/> (number and checksum).</summary>
    public bool Confirms(EpochSummary sent) => Epoch == sent.Epoch && Checksum == sent.Checksum;
}

/// <summary>What a record of the back channel says.</summary>
public enum BackRecordKind
{
    /// <summary>ACK: <see cref="BackRecord.Ack"/> is set.</summary>
    Ack,
    /// <summary>HELLO: <see cref="BackRecord.Version"/> and <see cref="BackRecord.Timeout"/> are set.</summary>
    Hello,
    /// <summary>RELEASED: the backup discarded its copy after RELEASE; it will not take over.</summary>
    Released,
    /// <summary>TAKEOVER: the backup takes over; the primary is fenced.</summary>
    Takeover,
    /// <summary>END: the backup closed the back channel gracefully.</summary>
    End,
}

/// <summary>One record of the back channel (heartbeats are reported by <see cref="AckReader.HeartbeatReceived"/> instead).</summary>
public readonly record struct BackRecord(BackRecordKind Kind, Ack Ack = default, uint Version = 0, TimeSpan Timeout = default);

/// <summary>
/// Writes the back channel (backup → primary, the reverse direction of the same connection): HELLO (first), ACK,
/// HEARTBEAT, RELEASED, TAKEOVER and END records, each flushed at once. No stream header. Not thread-safe; the caller owns the stream.
/// </summary>
public sealed class AckWriter
{
    private readonly System.IO.Stream _stream;
    private readonly byte[] _record = new byte[StreamFormat.RecordHeaderSize + StreamFormat.AckLength];
    private ulong? _lastEpoch;
    private bool _ended;

    /// <summary>Creates a writer over <paramref name="stream"/>.</summary>
    public AckWriter(System.IO.Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("the stream is not writable", nameof(stream));
        _stream = stream;
    }

    /// <summary>Acknowledges a received, verified epoch.</summary>
    public void WriteAck(Epoch epoch)
    {
        ArgumentNullException.ThrowIfNull(epoch);
        WriteAck(epoch.Number, epoch.Checksum);
    }

    /// <summary>Acknowledges epoch <paramref name="epoch"/> with its checksum. Epoch numbers must increase.</summary>
    public void WriteAck(ulong epoch, ulong checksum)
    {
        if (_lastEpoch is { } last && epoch <= last)
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"acknowledged epochs must increase (the last was {last})");
        Span<byte> body = stackalloc byte[StreamFormat.AckLength];
        BinaryPrimitives.WriteUInt64LittleEndian(body, epoch);
        BinaryPrimitives.WriteUInt64LittleEndian(body[8..], checksum);
        Write(RecordType.Ack, body);
        _lastEpoch = epoch;
    }

    /// <summary>Writes a HEARTBEAT with <paramref name="timestamp"/> (default: now).</summary>
    public void WriteHeartbeat(DateTimeOffset? timestamp = null)
    {
        Span<byte> body = stackalloc byte[StreamFormat.HeartbeatLength];
        BinaryPrimitives.WriteUInt64LittleEndian(body, Heartbeats.Encode(timestamp ?? DateTimeOffset.UtcNow));
        Write(RecordType.Heartbeat, body);
    }

    /// <summary>
    /// Writes HELLO, the first record of a Remus backup's back channel: the format version it speaks and its silence
    /// timeout (whole milliseconds), which the primary adopts.
    /// </summary>
    public void WriteHello(TimeSpan timeout)
    {
        Span<byte> body = stackalloc byte[StreamFormat.HelloLength];
        BinaryPrimitives.WriteUInt32LittleEndian(body, StreamFormat.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(body[8..], (ulong)Math.Max(0, (long)timeout.TotalMilliseconds));
        Write(RecordType.Hello, body);
    }

    /// <summary>Writes RELEASED (the answer to RELEASE: the copy is discarded, no takeover) and ends the channel.</summary>
    public void WriteReleased()
    {
        Write(RecordType.Released, default);
        _ended = true;
    }

    /// <summary>Writes TAKEOVER: this backup takes over (before it re-emits output or runs the domain).</summary>
    public void WriteTakeover()
    {
        Write(RecordType.Takeover, default);
        _ended = true;
    }

    /// <summary>
    /// After TAKEOVER: writes a HEARTBEAT that nobody reads (a fenced primary reads nothing after TAKEOVER), to learn
    /// whether the primary's end of the connection is closed — a dead process's socket answers with a reset, and the
    /// next write fails (IOException).
    /// </summary>
    public void Probe()
    {
        Span<byte> body = stackalloc byte[StreamFormat.HeartbeatLength];
        BinaryPrimitives.WriteUInt64LittleEndian(body, Heartbeats.Encode(DateTimeOffset.UtcNow));
        WriteRecord(RecordType.Heartbeat, body); // after the end on purpose
    }

    /// <summary>Writes END: the backup closes the back channel gracefully.</summary>
    public void WriteEnd()
    {
        Write(RecordType.End, default);
        _ended = true;
    }

    private void Write(RecordType type, ReadOnlySpan<byte> body)
    {
        if (_ended) throw new InvalidOperationException("the back channel has ended");
        WriteRecord(type, body);
    }

    private void WriteRecord(RecordType type, ReadOnlySpan<byte> body)
    {
        Span<byte> record = _record.AsSpan(0, StreamFormat.RecordHeaderSize + body.Length); // bodies are 0, 8 or 16: aligned
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)body.Length);
        body.CopyTo(record[8..]);
        _stream.Write(record);
        _stream.Flush();
    }
}

/// <summary>
/// Reads the back channel on the primary: <see cref="ReadNext"/> returns the next record (HELLO, ACK, RELEASED,
/// TAKEOVER, END) and reports heartbeats on the way; <see cref="ReadAck"/> is the migration's view (ACK, or null
/// at END). Not thread-safe; the caller owns the stream.
/// </summary>
public sealed class AckReader
{
    private readonly RecordInput _input;
    private ulong? _lastEpoch;
    private bool _ended;
    private bool _faulted;
    private bool _first = true;

    /// <summary>Creates a reader over <paramref name="stream"/>.</summary>
    public AckReader(System.IO.Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new ArgumentException("the stream is not readable", nameof(stream));
        _input = new RecordInput(stream);
    }

    /// <summary>Raised on the reading thread for every HEARTBEAT from the backup.</summary>
    public event Action<DateTimeOffset>? HeartbeatReceived;

    /// <summary>The last acknowledged epoch, if any.</summary>
    public ulong? LastEpoch => _lastEpoch;

    /// <summary>
    /// Reads up to the next ACK; null when the backup ended the channel with END. Any other record (HELLO,
    /// RELEASED, TAKEOVER) is an error here: a migration's back channel has only ACK, HEARTBEAT and END.
    /// </summary>
    public Ack? ReadAck()
    {
        var record = ReadNext();
        return record.Kind switch
        {
            BackRecordKind.Ack => record.Ack,
            BackRecordKind.End => null,
            _ => Fault(new CheckpointStreamException(CheckpointStreamError.Protocol,
                $"unexpected record {record.Kind.ToString().ToUpperInvariant()} on the back channel (only ACK, HEARTBEAT and END belong there)")),
        };
    }

    private Ack? Fault(Exception e)
    {
        _faulted = true;
        throw e;
    }

    /// <summary>
    /// Reads the next record other than HEARTBEAT. HELLO only as the first record; after END, RELEASED or TAKEOVER
    /// the channel has ended and every later call returns END.
    /// </summary>
    public BackRecord ReadNext()
    {
        if (_ended) return new BackRecord(BackRecordKind.End);
        if (_faulted) throw new InvalidOperationException("the ack reader is faulted by an earlier error");
        try
        {
            Span<byte> header = stackalloc byte[StreamFormat.RecordHeaderSize];
            Span<byte> body = stackalloc byte[16];
            while (true)
            {
                _input.ReadExactly(header, "back-channel record header (the backup closed without END)");
                var (type, length) = RecordInput.ParseRecordHeader(header);
                switch (type)
                {
                    case RecordType.End:
                        _ended = true;
                        return new BackRecord(BackRecordKind.End);
                    case RecordType.Released:
                    case RecordType.Takeover:
                        _ended = true;
                        _first = false;
                        return new BackRecord(type == RecordType.Released ? BackRecordKind.Released : BackRecordKind.Takeover);
                    case RecordType.Hello:
                    {
                        _input.ReadExactly(body[..(int)length], "record HELLO");
                        if (!_first)
                            throw new CheckpointStreamException(CheckpointStreamError.Protocol, "HELLO is only the first record of the back channel");
                        _first = false;
                        uint version = BinaryPrimitives.ReadUInt32LittleEndian(body);
                        if (BinaryPrimitives.ReadUInt32LittleEndian(body[4..]) != 0)
                            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, "record HELLO: reserved field is not zero");
                        ulong ms = BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
                        if (ms > int.MaxValue)
                            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, $"record HELLO: timeout of {ms} ms is out of range");
                        return new BackRecord(BackRecordKind.Hello, Version: version, Timeout: TimeSpan.FromMilliseconds(ms));
                    }
                    case RecordType.Heartbeat:
                        _input.ReadExactly(body[..(int)length], "record HEARTBEAT");
                        HeartbeatReceived?.Invoke(Heartbeats.Decode(BinaryPrimitives.ReadUInt64LittleEndian(body)));
                        break;
                    case RecordType.Ack:
                    {
                        _input.ReadExactly(body[..(int)length], "record ACK");
                        var ack = new Ack(BinaryPrimitives.ReadUInt64LittleEndian(body), BinaryPrimitives.ReadUInt64LittleEndian(body[8..]));
                        if (_lastEpoch is { } last && ack.Epoch <= last)
                            throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                                $"ACK for epoch {ack.Epoch} follows the ACK for epoch {last}: acknowledged epochs must increase");
                        _lastEpoch = ack.Epoch;
                        _first = false;
                        return new BackRecord(BackRecordKind.Ack, ack);
                    }
                    default:
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                            $"unexpected record {StreamFormat.Name(type)} on the back channel (only HELLO, ACK, HEARTBEAT, RELEASED, TAKEOVER and END belong there)");
                }
            }
        }
        catch
        {
            _faulted = true;
            throw;
        }
    }
}
