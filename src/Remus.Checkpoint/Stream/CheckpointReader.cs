using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace Remus.Checkpoint.Stream;

/// <summary>Options of a <see cref="CheckpointReader"/>.</summary>
public sealed record CheckpointReaderOptions
{
    /// <summary>Most stream bytes one epoch may take while buffered; a larger epoch is refused. Default: no limit.</summary>
    public long MaxEpochBytes { get; init; } = long.MaxValue;

    /// <summary>
    /// Most VCPU_STATE records one epoch may carry (one per vCPU of the domain): a receiver sets it to its policy's
    /// vCPU limit (<c>ReceivePolicy.MaxVcpus</c>, --max-vcpus). Never more than
    /// <see cref="StreamFormat.MaxVcpuStatesPerEpoch"/>, whatever is set here. The record that would exceed it is
    /// refused from its header, before its body is read.
    /// </summary>
    public int MaxVcpuStates { get; init; } = StreamFormat.MaxVcpuStatesPerEpoch;
}

/// <summary>
/// Reads a checkpoint stream from any <see cref="System.IO.Stream"/> (non-seekable, partial reads fine):
/// <see cref="ReadHeader"/>, then <see cref="ReadEpoch"/> until it returns null (END). Each epoch is buffered
/// whole and returned only after its checksum verified; any problem throws <see cref="CheckpointStreamException"/>
/// and leaves the reader faulted. The reader never reads past END. Not thread-safe; the caller owns the stream
/// (close it from another thread to abandon a blocked read, e.g. on a heartbeat timeout).
/// </summary>
public sealed class CheckpointReader
{
    private enum State { Start, Open, Ended, Faulted }

    private readonly RecordInput _input;
    private readonly CheckpointReaderOptions _options;
    private readonly XxHash3 _hash = new();
    private readonly byte[] _scratch = new byte[StreamFormat.PageSize];
    private State _state;
    private ulong? _lastEpoch;

    /// <summary>Creates a reader over <paramref name="stream"/>.</summary>
    public CheckpointReader(System.IO.Stream stream, CheckpointReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new ArgumentException("the stream is not readable", nameof(stream));
        _input = new RecordInput(stream);
        _options = options ?? new CheckpointReaderOptions();
    }

    /// <summary>Raised on the reading thread for every HEARTBEAT, with the sender's timestamp, as soon as it is read.</summary>
    public event Action<DateTimeOffset>? HeartbeatReceived;

    /// <summary>The header, once read.</summary>
    public StreamHeader? Header { get; private set; }

    /// <summary>Stream bytes consumed so far.</summary>
    public long BytesRead => _input.Position;

    /// <summary>Complete epochs returned so far.</summary>
    public long EpochsRead { get; private set; }

    /// <summary>Heartbeats received so far.</summary>
    public long HeartbeatsReceived { get; private set; }

    /// <summary>The sender's timestamp in the last heartbeat, if any.</summary>
    public DateTimeOffset? LastHeartbeat { get; private set; }

    /// <summary>The number of the last complete epoch, if any.</summary>
    public ulong? LastEpoch => _lastEpoch;

    /// <summary>Whether END (or RELEASE) was read.</summary>
    public bool IsEnded => _state == State.Ended;

    /// <summary>Whether the stream ended with RELEASE (the primary gave up on this backup) rather than END.</summary>
    public bool IsReleased { get; private set; }

    /// <summary>The primary's reason in its RELEASE (may be empty).</summary>
    public string? ReleaseReason { get; private set; }

    /// <summary>Reads and verifies the stream header. Must be the first call.</summary>
    public StreamHeader ReadHeader()
    {
        Require(State.Start, "the header is read once, first");
        try
        {
            Header = StreamHeader.Read(_input);
            _state = State.Open;
            return Header;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Reads the next epoch through its CHECKPOINT_END and verifies its checksum; returns null at END or RELEASE
    /// (<see cref="IsReleased"/> tells which), and on every call after it. Heartbeats met on the way are reported by <see cref="HeartbeatReceived"/>.
    /// </summary>
    public Epoch? ReadEpoch()
    {
        if (_state == State.Ended) return null;
        Require(State.Open, "epochs are read after the header");
        var batches = new List<PageBatch>();
        var volumes = new List<VolumeBatch>();
        try
        {
            Epoch? epoch = ReadEpochCore(batches, volumes);
            if (epoch is null) _state = State.Ended;
            else EpochsRead++;
            return epoch;
        }
        catch
        {
            _state = State.Faulted;
            foreach (var batch in batches) batch.Release();
            foreach (var batch in volumes) batch.Release();
            throw;
        }
    }

    private Epoch? ReadEpochCore(List<PageBatch> batches, List<VolumeBatch> volumes)
    {
        Span<byte> header = stackalloc byte[RecordHeader.Size(Header!.Version)];
        Span<byte> small = stackalloc byte[16];
        var vcpus = new List<VcpuState>();
        byte[]? kernel = null;
        ExitRecord? exit = null;
        var blobs = new List<(RecordType Type, byte[] Body)>();
        int contentRecords = 0, volumeRecords = 0, vcpuRecords = 0;
        bool kernelRecord = false;
        int maxVcpus = Math.Min(Math.Max(_options.MaxVcpuStates, 0), StreamFormat.MaxVcpuStatesPerEpoch);
        long epochBytes = 0;

        while (true)
        {
            _input.ReadRecordHeader(header);
            var (type, length) = RecordInput.ParseRecordHeader(header);
            string what = $"record {StreamFormat.Name(type)}";
            int pad = StreamFormat.PaddingFor(length);
            epochBytes += header.Length + length + pad;
            if (epochBytes > _options.MaxEpochBytes && type != RecordType.End)
                throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                    $"epoch after {_lastEpoch?.ToString() ?? "the header"} exceeds the buffering limit of {_options.MaxEpochBytes} bytes");

            switch (type)
            {
                case RecordType.End:
                case RecordType.Release when Header!.Version >= 2:
                    if (contentRecords > 0)
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                            $"{StreamFormat.Name(type)} record inside an unfinished epoch ({contentRecords} records since the last CHECKPOINT_END)");
                    if (type == RecordType.Release)
                    {
                        byte[] reason = _input.ReadBlob((int)length, what);
                        _input.ReadPadding(length, type, null);
                        IsReleased = true;
                        ReleaseReason = System.Text.Encoding.UTF8.GetString(reason);
                    }
                    return null;

                case RecordType.Ack:
                case RecordType.Hello:
                case RecordType.Released:
                case RecordType.Takeover:
                    throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                        $"unexpected record {StreamFormat.Name(type)} in the checkpoint stream ({StreamFormat.Name(type)} belongs on the back channel)");

                case RecordType.Exit when Header!.Version >= 2:
                {
                    if (exit != null)
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol, "an epoch carries two EXIT records");
                    _hash.Append(header);
                    byte[] body = _input.ReadBlob((int)length, what);
                    _hash.Append(body);
                    _input.ReadPadding(length, type, _hash);
                    if (BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)) != 0)
                        throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, "record EXIT: reserved field is not zero");
                    exit = new ExitRecord(BinaryPrimitives.ReadInt32LittleEndian(body), body[StreamFormat.ExitFixedLength..]);
                    contentRecords++;
                    break;
                }

                case RecordType.Release:
                case RecordType.Exit:
                    throw new CheckpointStreamException(CheckpointStreamError.UnknownRecord,
                        $"record {StreamFormat.Name(type)} (0x{(uint)type:x}) does not exist in a version {Header!.Version} stream");

                case RecordType.PageData:
                {
                    _hash.Append(header);
                    byte[] buffer = ArrayPool<byte>.Shared.Rent((int)length);
                    var batch = new PageBatch(buffer, (int)length);
                    batches.Add(batch);
                    _input.ReadExactly(buffer.AsSpan(0, (int)length), what);
                    _hash.Append(buffer.AsSpan(0, (int)length));
                    _input.ReadPadding(length, type, _hash);
                    batch.StartPrecheck(); // a large body is judged on another core while the next is read
                    contentRecords++;
                    break;
                }

                case RecordType.VolumeOps:
                {
                    // Opaque here: buffered (pooled) with the epoch, judged by the replica only once CHECKPOINT_END
                    // verified, applied only after that (Epoch.ApplyVolumes).
                    _hash.Append(header);
                    var batch = VolumeBatch.Rent((int)length);
                    volumes.Add(batch);
                    _input.ReadExactly(batch.Buffer.AsSpan(0, (int)length), what);
                    _hash.Append(batch.Buffer.AsSpan(0, (int)length));
                    _input.ReadPadding(length, type, _hash);
                    contentRecords++;
                    volumeRecords++;
                    break;
                }

                case RecordType.VcpuState:
                case RecordType.KernelState:
                {
                    // Counted from the header, before the body is read: a stream cannot make the reader buffer more
                    // vCPU states than the receiver allows, nor a second kernel state of up to 256 MiB.
                    if (type == RecordType.VcpuState && ++vcpuRecords > maxVcpus)
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                            $"the epoch after {_lastEpoch?.ToString() ?? "the header"} carries more than {maxVcpus} VCPU_STATE records: this receiver allows at most {maxVcpus} vCPUs");
                    if (type == RecordType.KernelState)
                    {
                        if (kernelRecord)
                            throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                                $"the epoch after {_lastEpoch?.ToString() ?? "the header"} carries two KERNEL_STATE records");
                        kernelRecord = true;
                    }
                    _hash.Append(header);
                    byte[] body = _input.ReadBlob((int)length, what);
                    _hash.Append(body);
                    _input.ReadPadding(length, type, _hash);
                    blobs.Add((type, body));
                    contentRecords++;
                    break;
                }

                case RecordType.Heartbeat:
                {
                    _hash.Append(header);
                    Span<byte> body = small[..StreamFormat.HeartbeatLength];
                    _input.ReadExactly(body, what);
                    _hash.Append(body);
                    var time = Heartbeats.Decode(BinaryPrimitives.ReadUInt64LittleEndian(body));
                    HeartbeatsReceived++;
                    LastHeartbeat = time;
                    HeartbeatReceived?.Invoke(time);
                    break;
                }

                case RecordType.CheckpointEnd:
                {
                    _hash.Append(header);
                    Span<byte> body = small[..StreamFormat.CheckpointEndLength];
                    _input.ReadExactly(body, what);
                    ulong number = BinaryPrimitives.ReadUInt64LittleEndian(body);
                    ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
                    _hash.Append(body[..8]);
                    ulong computed = _hash.GetCurrentHashAsUInt64();
                    _hash.Reset();
                    if (stored != computed)
                        throw new CheckpointStreamException(CheckpointStreamError.ChecksumMismatch,
                            $"checksum mismatch in epoch {number} (stored {stored:x16}, computed {computed:x16}); nothing was applied");
                    if (_lastEpoch is { } last && number <= last)
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                            $"epoch {number} follows epoch {last}: epoch numbers must increase");

                    // The bytes are the sender's; now judge what they say.
                    foreach (var batch in batches) batch.EnsureValid(number, _scratch);
                    foreach (var (blobType, blob) in blobs)
                    {
                        if (blobType == RecordType.KernelState)
                        {
                            if (kernel is not null)
                                throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                                    $"epoch {number} carries two KERNEL_STATE records");
                            kernel = blob;
                            continue;
                        }
                        if (blob.Length < 8)
                            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                                $"record VCPU_STATE in epoch {number}: body of {blob.Length} bytes is shorter than its 8-byte prefix");
                        uint vcpu = BinaryPrimitives.ReadUInt32LittleEndian(blob);
                        if (BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4)) != 0)
                            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                                $"record VCPU_STATE in epoch {number}: reserved field is not zero");
                        if (vcpus.Exists(v => v.VcpuId == vcpu))
                            throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                                $"epoch {number} carries two VCPU_STATE records for vCPU {vcpu}");
                        vcpus.Add(new VcpuState(vcpu, blob[8..]));
                    }
                    if (exit != null && contentRecords - volumeRecords > 1)
                        throw new CheckpointStreamException(CheckpointStreamError.Protocol,
                            $"epoch {number} carries EXIT with other records (an exit epoch carries EXIT alone, after the program's last VOLUME_OPS if any)");
                    _lastEpoch = number;
                    return new Epoch(number, computed, epochBytes, batches, vcpus, kernel, volumes) { Exit = exit };
                }
            }
        }
    }

    private void Require(State state, string rule)
    {
        if (_state == state) return;
        string why = _state switch
        {
            State.Faulted => "the reader is faulted by an earlier error",
            State.Ended => "the stream has ended",
            State.Start => "the header has not been read",
            _ => "the header was already read",
        };
        throw new InvalidOperationException($"{why}: {rule}");
    }
}
