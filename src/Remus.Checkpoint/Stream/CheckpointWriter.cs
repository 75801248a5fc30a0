using System.Buffers.Binary;
using System.IO.Hashing;

namespace Remus.Checkpoint.Stream;

/// <summary>Options of a <see cref="CheckpointWriter"/>.</summary>
public sealed record CheckpointWriterOptions
{
    /// <summary>Compress pages: zero pages, unchanged pages, XOR deltas against the page cache, LZ4. Default on;
    /// off (<c>-u</c>) sends every page RAW.</summary>
    public bool Compress { get; init; } = true;

    /// <summary>Bytes of page content the sender remembers for XOR deltas (default 32 MiB, as Xen). 0 disables deltas.</summary>
    public long PageCacheBytes { get; init; } = 32L << 20;

    /// <summary>Pages per PAGE_DATA record (1 .. <see cref="StreamFormat.MaxPagesPerRecord"/>; default 512).</summary>
    public int PagesPerRecord { get; init; } = StreamFormat.DefaultPagesPerRecord;

    /// <summary>
    /// Threads that encode the pages of full PAGE_DATA records (the writer's own thread included; the others are
    /// thread-pool workers): while they compress one record's pages the writer's thread reads the next record's
    /// pages and writes the finished records, in order. The bytes written are the same whatever the number. 1: all
    /// on the writer's thread. Default: the machine's processor count, at most 4. Records that are not full (the
    /// last of an epoch, a Remus epoch of a few dirty pages) are always encoded on the writer's thread.
    /// </summary>
    public int EncodeThreads { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>The defaults: compressed, 32 MiB cache, 512 pages per record.</summary>
    public static CheckpointWriterOptions Default { get; } = new();

    /// <summary>Every page RAW, no cache (<c>-u</c>).</summary>
    public static CheckpointWriterOptions Uncompressed { get; } = new() { Compress = false, PageCacheBytes = 0 };
}

/// <summary>What <see cref="CheckpointWriter.EndCheckpoint"/> wrote.</summary>
/// <param name="Epoch">The epoch number.</param>
/// <param name="Bytes">Stream bytes of the epoch, from the previous CHECKPOINT_END (or the header) through this one.</param>
/// <param name="Checksum">The epoch's checksum, as the receiver acknowledges it.</param>
/// <param name="Pages">Pages written in the epoch.</param>
public readonly record struct EpochSummary(ulong Epoch, long Bytes, ulong Checksum, long Pages);

/// <summary>Counters of a <see cref="CheckpointWriter"/> since it was created.</summary>
public readonly record struct CheckpointWriterStatistics
{
    /// <summary>All bytes written to the stream.</summary>
    public long BytesWritten { get; init; }
    /// <summary>Epochs closed with CHECKPOINT_END.</summary>
    public long Epochs { get; init; }
    /// <summary>Pages written.</summary>
    public long Pages { get; init; }
    /// <summary>Pages sent RAW.</summary>
    public long RawPages { get; init; }
    /// <summary>Pages sent as ZERO.</summary>
    public long ZeroPages { get; init; }
    /// <summary>Pages sent as UNCHANGED.</summary>
    public long UnchangedPages { get; init; }
    /// <summary>Pages sent as LZ4 (whole page compressed).</summary>
    public long Lz4Pages { get; init; }
    /// <summary>Pages sent as XOR_LZ4 (delta against the cache).</summary>
    public long XorLz4Pages { get; init; }
    /// <summary>Bytes of PAGE_DATA records (headers, descriptors, data, padding).</summary>
    public long PageDataBytes { get; init; }
    /// <summary>Pages dropped from the page cache to make room.</summary>
    public long CacheEvictions { get; init; }
    /// <summary>VOLUME_OPS records written.</summary>
    public long VolumeOpsRecords { get; init; }
    /// <summary>Bytes of VOLUME_OPS records (frames, bodies, padding).</summary>
    public long VolumeOpsBytes { get; init; }

    /// <summary>Page bytes in (4096 per page) per PAGE_DATA byte out; 1 when nothing was written.</summary>
    public double CompressionRatio => PageDataBytes == 0 ? 1.0 : (double)Pages * StreamFormat.PageSize / PageDataBytes;

    /// <summary>Pages sent with <paramref name="encoding"/>.</summary>
    public long PagesWith(PageEncoding encoding) => encoding switch
    {
        PageEncoding.Raw => RawPages,
        PageEncoding.Zero => ZeroPages,
        PageEncoding.Unchanged => UnchangedPages,
        PageEncoding.Lz4 => Lz4Pages,
        PageEncoding.XorLz4 => XorLz4Pages,
        _ => 0,
    };
}

/// <summary>
/// Writes a checkpoint stream (save file, migration, Remus replication) to any <see cref="System.IO.Stream"/>.
/// Pages are encoded as they are given (the caller's span is not kept) and buffered into PAGE_DATA records;
/// <see cref="EndCheckpoint"/> closes an epoch with its checksum and flushes. Not thread-safe: serialize calls
/// (e.g. a heartbeat timer) with the epoch loop. The caller owns the stream. After any exception the writer is
/// faulted (its page cache may no longer match the receiver) and must be replaced along with the connection.
/// </summary>
public sealed class CheckpointWriter
{
    private enum State { Start, Open, Ended, Faulted }

    private readonly System.IO.Stream _stream;
    private readonly bool _compress;
    private readonly int _pagesPerRecord;
    private readonly PageCache _cache;
    private readonly XxHash3 _hash = new();

    // PAGE_DATA records on their way out: _batches[_fill] is being filled; the _inFlight batches before it (in ring
    // order) are submitted for encoding and not yet written. Allocated on first use (the ring's others only once
    // a full record is encoded in parallel). WritePage/WritePages may return with records still being encoded (the
    // pages are snapshots by then), so that the caller reads the next pages while they compress; every other call
    // writes them first (FlushPages), so records keep their order and an encoding failure surfaces in the next call.
    private readonly int _encodeThreads;
    private readonly EncodeBatch?[] _batches;
    private int _fill;
    private int _inFlight;
    private readonly byte[] _small = new byte[StreamFormat.CheckedRecordHeaderSize + 16 + StreamFormat.Alignment];

    private State _state;
    private uint _version;
    private bool _epochHasContent;
    private bool _epochHasVolumeOpsOnly; // every record of the open epoch so far is VOLUME_OPS (EXIT may follow them)
    private ulong? _lastEpoch;
    private long _epochBytes;
    private long _epochPages;

    private long _bytesWritten, _epochs, _pages, _pageDataBytes, _volumeOpsRecords, _volumeOpsBytes;
    private readonly long[] _byEncoding = new long[5];

    /// <summary>Creates a writer over <paramref name="stream"/>; nothing is written until <see cref="WriteHeader"/>.</summary>
    public CheckpointWriter(System.IO.Stream stream, CheckpointWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("the stream is not writable", nameof(stream));
        options ??= CheckpointWriterOptions.Default;
        if (options.PagesPerRecord is < 1 or > StreamFormat.MaxPagesPerRecord)
            throw new ArgumentOutOfRangeException(nameof(options), options.PagesPerRecord,
                $"PagesPerRecord must be 1..{StreamFormat.MaxPagesPerRecord}");
        if (options.PageCacheBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.PageCacheBytes, "PageCacheBytes must not be negative");
        if (options.EncodeThreads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.EncodeThreads, "EncodeThreads must be at least 1");
        _stream = stream;
        _compress = options.Compress;
        _pagesPerRecord = options.PagesPerRecord;
        _cache = new PageCache(_compress ? options.PageCacheBytes : 0);
        // Uncompressed pages need no encoding work: one batch, written as soon as it is full.
        _encodeThreads = _compress ? options.EncodeThreads : 1;
        _batches = new EncodeBatch?[_encodeThreads > 1 ? _encodeThreads + 1 : 1];
    }

    /// <summary>Whether pages are compressed.</summary>
    public bool Compress => _compress;

    /// <summary>Counters since creation (pages still buffered in an unwritten record included in <see cref="CheckpointWriterStatistics.Pages"/>;
    /// their encodings are counted when their record is written).</summary>
    public CheckpointWriterStatistics Statistics => new()
    {
        BytesWritten = _bytesWritten,
        Epochs = _epochs,
        Pages = _pages,
        RawPages = _byEncoding[(int)PageEncoding.Raw],
        ZeroPages = _byEncoding[(int)PageEncoding.Zero],
        UnchangedPages = _byEncoding[(int)PageEncoding.Unchanged],
        Lz4Pages = _byEncoding[(int)PageEncoding.Lz4],
        XorLz4Pages = _byEncoding[(int)PageEncoding.XorLz4],
        PageDataBytes = _pageDataBytes,
        CacheEvictions = _cache.Evictions,
        VolumeOpsRecords = _volumeOpsRecords,
        VolumeOpsBytes = _volumeOpsBytes,
    };

    /// <summary>Writes the stream header. Must be the first call.</summary>
    public void WriteHeader(StreamHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        Require(State.Start, "the header is written once, first");
        byte[] bytes = header.Encode(_compress ? StreamFlags.Compressed : StreamFlags.None);
        try
        {
            _stream.Write(bytes);
            _bytesWritten += bytes.Length;
            _version = header.Version;
            _state = State.Open;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>Encodes page <paramref name="pfn"/> (4096 bytes) into the current PAGE_DATA record.</summary>
    public void WritePage(ulong pfn, ReadOnlySpan<byte> page)
    {
        if (page.Length != StreamFormat.PageSize)
            throw new ArgumentException($"a page is {StreamFormat.PageSize} bytes, not {page.Length}", nameof(page));
        if (pfn > StreamFormat.MaxPfn)
            throw new ArgumentOutOfRangeException(nameof(pfn), pfn, "page frame numbers have 52 bits");
        Require(State.Open, "pages are written after the header and before END");
        try
        {
            AddPage(pfn, page);
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Encodes the pages <paramref name="pfns"/>, read from <paramref name="source"/> one at a time (each read once,
    /// on the calling thread, before the call returns). Full records are compressed on <see cref="CheckpointWriterOptions.EncodeThreads"/>
    /// threads while the next record's pages are read, in this call or the next: up to EncodeThreads records may
    /// still be compressing when it returns (they go out, in order, as later records fill or at the next call that
    /// writes anything else).
    /// </summary>
    public void WritePages(ReadOnlySpan<ulong> pfns, IPageSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        foreach (ulong pfn in pfns)
            if (pfn > StreamFormat.MaxPfn)
                throw new ArgumentOutOfRangeException(nameof(pfns), pfn, "page frame numbers have 52 bits");
        Require(State.Open, "pages are written after the header and before END");
        try
        {
            foreach (ulong pfn in pfns)
            {
                ReadOnlySpan<byte> page = source.GetPage(pfn);
                if (page.Length != StreamFormat.PageSize)
                    throw new ArgumentException($"a page is {StreamFormat.PageSize} bytes, not {page.Length}", nameof(source));
                AddPage(pfn, page);
            }
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>Writes the opaque state of vCPU <paramref name="vcpuId"/> (at most 1 MiB - 8 bytes).</summary>
    public void WriteVcpuState(uint vcpuId, ReadOnlySpan<byte> state)
    {
        if (state.Length > StreamFormat.MaxVcpuStateLength - 8)
            throw new ArgumentException($"vCPU state is {state.Length} bytes; at most {StreamFormat.MaxVcpuStateLength - 8}", nameof(state));
        Require(State.Open, "vCPU state is written after the header and before END");
        try
        {
            FlushPages();
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(prefix, vcpuId);
            BinaryPrimitives.WriteUInt32LittleEndian(prefix[4..], 0);
            WriteBlobRecord(RecordType.VcpuState, prefix, state);
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>Writes the opaque state of vCPU 0.</summary>
    public void WriteVcpuState(ReadOnlySpan<byte> state) => WriteVcpuState(0, state);

    /// <summary>Writes the opaque "kernel" state (at most 256 MiB); at most once per epoch.</summary>
    public void WriteKernelState(ReadOnlySpan<byte> state)
    {
        if (state.Length > StreamFormat.MaxKernelStateLength)
            throw new ArgumentException($"kernel state is {state.Length} bytes; at most {StreamFormat.MaxKernelStateLength}", nameof(state));
        Require(State.Open, "kernel state is written after the header and before END");
        try
        {
            FlushPages();
            WriteBlobRecord(RecordType.KernelState, default, state);
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Writes one VOLUME_OPS record: a batch of the domain's volume operations, opaque here (the replica's body,
    /// <see cref="StreamFormat.MinVolumeOpsLength"/> .. <see cref="StreamFormat.MaxVolumeOpsLength"/> bytes). Inside an
    /// epoch, after its pages (pages still buffered are written first); the receiver applies it in stream order once
    /// the epoch's CHECKPOINT_END verified.
    /// </summary>
    public void WriteVolumeOps(ReadOnlySpan<byte> body)
    {
        if (body.Length is < StreamFormat.MinVolumeOpsLength or > StreamFormat.MaxVolumeOpsLength)
            throw new ArgumentException($"a VOLUME_OPS body is {StreamFormat.MinVolumeOpsLength}..{StreamFormat.MaxVolumeOpsLength} bytes, not {body.Length}", nameof(body));
        Require(State.Open, "volume operations are written after the header and before END");
        try
        {
            FlushPages();
            long before = _epochBytes;
            bool volumeOnly = !_epochHasContent || _epochHasVolumeOpsOnly;
            WriteBlobRecord(RecordType.VolumeOps, default, body);
            _epochHasVolumeOpsOnly = volumeOnly;
            _volumeOpsRecords++;
            _volumeOpsBytes += _epochBytes - before;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Closes epoch <paramref name="epoch"/> (numbers must increase): writes the buffered pages and CHECKPOINT_END
    /// with the checksum of every byte of the epoch, then flushes the stream.
    /// </summary>
    public EpochSummary EndCheckpoint(ulong epoch)
    {
        Require(State.Open, "a checkpoint ends after the header and before END");
        if (_lastEpoch is { } last && epoch <= last)
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"epoch numbers must increase (the last was {last})");
        try
        {
            FlushPages();
            int h = RecordHeader.Size(_version);
            Span<byte> record = _small.AsSpan(0, h + StreamFormat.CheckpointEndLength);
            RecordHeader.Write(record, RecordType.CheckpointEnd, StreamFormat.CheckpointEndLength, _version);
            BinaryPrimitives.WriteUInt64LittleEndian(record[h..], epoch);
            _hash.Append(record[..(h + 8)]);
            ulong checksum = _hash.GetCurrentHashAsUInt64();
            BinaryPrimitives.WriteUInt64LittleEndian(record[(h + 8)..], checksum);
            _stream.Write(record);
            _bytesWritten += record.Length;
            _stream.Flush();

            var summary = new EpochSummary(epoch, _epochBytes + record.Length, checksum, _epochPages);
            _hash.Reset();
            _epochBytes = 0;
            _epochPages = 0;
            _epochHasContent = false;
            _epochHasVolumeOpsOnly = false;
            _lastEpoch = epoch;
            _epochs++;
            return summary;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Writes a HEARTBEAT carrying <paramref name="timestamp"/> (default: now) and flushes. Allowed anywhere after
    /// the header, inside an epoch too (it then counts in the epoch's checksum).
    /// </summary>
    public void WriteHeartbeat(DateTimeOffset? timestamp = null)
    {
        Require(State.Open, "heartbeats are written after the header and before END");
        try
        {
            Span<byte> body = stackalloc byte[StreamFormat.HeartbeatLength];
            BinaryPrimitives.WriteUInt64LittleEndian(body, Heartbeats.Encode(timestamp ?? DateTimeOffset.UtcNow));
            WriteSmallRecord(RecordType.Heartbeat, body, hashed: true);
            _stream.Flush();
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Writes the EXIT record of an exit epoch: the program ended with <paramref name="status"/> and
    /// <paramref name="output"/> is its last, unreleased output. It must be the only record of its epoch: close
    /// the epoch with <see cref="EndCheckpoint"/> next (the backup acks it like any epoch). Only VOLUME_OPS may
    /// precede it in its epoch: the program's last volume operations, applied with the exit.
    /// </summary>
    public void WriteExit(int status, ReadOnlySpan<byte> output)
    {
        if (output.Length > StreamFormat.MaxExitLength - StreamFormat.ExitFixedLength)
            throw new ArgumentException($"exit output is {output.Length} bytes; at most {StreamFormat.MaxExitLength - StreamFormat.ExitFixedLength}", nameof(output));
        Require(State.Open, "EXIT is written after the header and before END");
        if (_version < 2) throw new InvalidOperationException("EXIT needs a version 2 stream (StreamHeader.Version = 2)");
        if ((_epochHasContent && !_epochHasVolumeOpsOnly) || PendingPages)
            throw new InvalidOperationException("EXIT is alone in its epoch: call EndCheckpoint first");
        try
        {
            Span<byte> prefix = stackalloc byte[StreamFormat.ExitFixedLength];
            BinaryPrimitives.WriteInt32LittleEndian(prefix, status);
            BinaryPrimitives.WriteUInt32LittleEndian(prefix[4..], 0);
            WriteBlobRecord(RecordType.Exit, prefix, output);
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>
    /// Writes RELEASE (the primary gave up on its backup: "you are released, do not take over") and flushes. Like
    /// END it is the last record of the stream and only comes between epochs.
    /// </summary>
    public void WriteRelease(string reason = "")
    {
        byte[] text = System.Text.Encoding.UTF8.GetBytes(reason);
        if (text.Length > StreamFormat.MaxReleaseLength) text = text[..StreamFormat.MaxReleaseLength];
        Require(State.Open, "RELEASE is written once, after the header");
        if (_version < 2) throw new InvalidOperationException("RELEASE needs a version 2 stream (StreamHeader.Version = 2)");
        if (_epochHasContent || PendingPages)
            throw new InvalidOperationException("cannot release inside an unfinished epoch: call EndCheckpoint first");
        try
        {
            int h = RecordHeader.Size(_version);
            var record = new byte[h + text.Length + StreamFormat.PaddingFor(text.Length)];
            RecordHeader.Write(record, RecordType.Release, (uint)text.Length, _version);
            text.CopyTo(record, h);
            _stream.Write(record);
            _bytesWritten += record.Length;
            _stream.Flush();
            _state = State.Ended;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>Whether the writer can still write (after the header, before END or RELEASE, not faulted).</summary>
    public bool IsOpen => _state == State.Open;

    /// <summary>Whether an epoch is half written (records since the last CHECKPOINT_END).</summary>
    public bool InEpoch => _epochHasContent || PendingPages;

    private bool PendingPages => _inFlight > 0 || _batches[_fill] is { IsEmpty: false };

    /// <summary>Writes END (graceful end of stream) and flushes. Only between epochs.</summary>
    public void WriteEnd()
    {
        Require(State.Open, "END is written once, after the header");
        if (_epochHasContent || PendingPages)
            throw new InvalidOperationException("cannot end the stream inside an unfinished epoch: call EndCheckpoint first");
        try
        {
            WriteSmallRecord(RecordType.End, default, hashed: false);
            _stream.Flush();
            _state = State.Ended;
        }
        catch
        {
            _state = State.Faulted;
            throw;
        }
    }

    /// <summary>Adds one page to the record being filled; a full record is submitted for encoding.</summary>
    private void AddPage(ulong pfn, ReadOnlySpan<byte> page)
    {
        EncodeBatch batch = _batches[_fill] ??= NewBatch();
        if (_compress) batch.AddCompressed(pfn, page, _cache);
        else batch.AddRaw(pfn, page);
        _pages++;
        _epochPages++;
        _epochHasContent = true;
        if (!batch.IsFull) return;

        if (_batches.Length == 1)
        {
            WriteBatch(batch); // nothing to overlap with: write it now, as a serial writer does
            return;
        }
        batch.Submit(_encodeThreads - 1);
        _inFlight++;
        _fill = (_fill + 1) % _batches.Length;
        // Records whose encoding is done go out at once; the ring full, the oldest is finished (helped) and written.
        while (_inFlight > 0 && Oldest().IsEncoded) WriteOldest();
        if (_inFlight == _batches.Length) WriteOldest();
        _batches[_fill] ??= NewBatch();
    }

    private EncodeBatch NewBatch() => new(_pagesPerRecord, _compress, StreamFormat.CheckedRecordHeaderSize);

    private EncodeBatch Oldest() => _batches[(_fill - _inFlight + _batches.Length) % _batches.Length]!;

    private void WriteOldest()
    {
        EncodeBatch batch = Oldest();
        _inFlight--;
        WriteBatch(batch);
    }

    /// <summary>Writes the submitted records, in order (the one being filled stays).</summary>
    private void DrainSubmitted()
    {
        while (_inFlight > 0) WriteOldest();
    }

    /// <summary>Writes every buffered page: the submitted records, then the one being filled.</summary>
    private void FlushPages()
    {
        DrainSubmitted();
        if (_batches[_fill] is { IsEmpty: false } batch) WriteBatch(batch);
    }

    private void WriteBatch(EncodeBatch batch)
    {
        batch.Finish();
        ReadOnlySpan<byte> record = batch.Frame(_version, _byEncoding);
        Emit(record);
        _pageDataBytes += record.Length;
        batch.Reset();
    }

    private void WriteBlobRecord(RecordType type, ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> state)
    {
        long bodyLength = prefix.Length + state.Length;
        Span<byte> header = stackalloc byte[StreamFormat.CheckedRecordHeaderSize];
        Emit(header[..RecordHeader.Write(header, type, (uint)bodyLength, _version)]);
        Emit(prefix);
        Emit(state);
        EmitPadding(StreamFormat.PaddingFor(bodyLength));
        _epochHasContent = true;
    }

    private void WriteSmallRecord(RecordType type, ReadOnlySpan<byte> body, bool hashed)
    {
        int h = RecordHeader.Size(_version);
        int total = h + body.Length + StreamFormat.PaddingFor(body.Length);
        Span<byte> record = _small.AsSpan(0, total);
        record.Clear();
        RecordHeader.Write(record, type, (uint)body.Length, _version);
        body.CopyTo(record[h..]);
        if (hashed) Emit(record);
        else
        {
            _stream.Write(record);
            _bytesWritten += record.Length;
        }
    }

    private void Emit(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        _hash.Append(bytes);
        _stream.Write(bytes);
        _bytesWritten += bytes.Length;
        _epochBytes += bytes.Length;
    }

    private void EmitPadding(int pad)
    {
        if (pad == 0) return;
        Span<byte> zeros = stackalloc byte[StreamFormat.Alignment];
        zeros.Clear();
        Emit(zeros[..pad]);
    }

    private void Require(State state, string rule)
    {
        if (_state == state) return;
        string why = _state switch
        {
            State.Faulted => "the writer is faulted by an earlier error",
            State.Ended => "the stream has ended",
            State.Start => "the header has not been written",
            _ => "the header was already written",
        };
        throw new InvalidOperationException($"{why}: {rule}");
    }
}

/// <summary>HEARTBEAT timestamps: nanoseconds since the Unix epoch, UTC.</summary>
internal static class Heartbeats
{
    public static ulong Encode(DateTimeOffset time) =>
        (ulong)Math.Max(0, time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    public static DateTimeOffset Decode(ulong nanoseconds) =>
        DateTimeOffset.UnixEpoch.AddTicks((long)Math.Min(nanoseconds / 100, (ulong)(DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks)));
}
