using System.Buffers;
using System.Buffers.Binary;
using Remus.Sandbox.Volumes;

namespace Remus.Checkpoint.Stream;

/// <summary>The opaque state of one vCPU, as carried by a VCPU_STATE record.</summary>
/// <param name="VcpuId">The vCPU's index.</param>
/// <param name="State">The state bytes (owned by the caller once read).</param>
public sealed record VcpuState(uint VcpuId, byte[] State);

/// <summary>The program's exit, as an EXIT record carries it: its status and its last (not yet released) output.</summary>
public sealed record ExitRecord(int Status, byte[] Output);

/// <summary>
/// One complete, checksum-verified epoch, fully buffered. Reading it changed nothing: pages reach guest memory
/// only through <see cref="ApplyTo"/>, which first checks that every page fits the target. Dispose it to return
/// its page buffers to the pool (the vCPU and kernel blobs stay valid).
/// </summary>
public sealed class Epoch : IDisposable
{
    private readonly List<PageBatch> _batches;
    private readonly List<VolumeBatch> _volumes;
    private IVolumeReplica? _volumesValidatedFor;
    private bool _volumesApplied;
    private bool _applied;
    private bool _disposed;

    internal Epoch(ulong number, ulong checksum, long streamBytes, List<PageBatch> batches,
        IReadOnlyList<VcpuState> vcpuStates, byte[]? kernelState, List<VolumeBatch>? volumes = null)
    {
        _volumes = volumes ?? [];
        Number = number;
        Checksum = checksum;
        StreamBytes = streamBytes;
        _batches = batches;
        VcpuStates = vcpuStates;
        KernelState = kernelState;
        foreach (var batch in batches) PageCount += batch.Count;
    }

    /// <summary>The epoch number from CHECKPOINT_END.</summary>
    public ulong Number { get; }

    /// <summary>The verified checksum; acknowledge it with <see cref="AckWriter.WriteAck(Epoch)"/>.</summary>
    public ulong Checksum { get; }

    /// <summary>Stream bytes of this epoch, CHECKPOINT_END included.</summary>
    public long StreamBytes { get; }

    /// <summary>Number of page entries (a page sent twice counts twice).</summary>
    public int PageCount { get; }

    /// <summary>vCPU states carried by this epoch (at most one per vCPU), in stream order.</summary>
    public IReadOnlyList<VcpuState> VcpuStates { get; }

    /// <summary>
    /// The vCPU states by id, which must run 0..n-1 with each once (one per thread of the domain, the first thread's
    /// first); <see cref="InvalidDataException"/> otherwise.
    /// </summary>
    public IReadOnlyList<byte[]> VcpuStatesInOrder()
    {
        var byId = new byte[VcpuStates.Count][];
        foreach (var v in VcpuStates)
        {
            if (v.VcpuId >= byId.Length || byId[v.VcpuId] != null)
                throw new InvalidDataException($"checkpoint {Number} has vCPU states with ids that do not run 0..{byId.Length - 1}");
            byId[v.VcpuId] = v.State;
        }
        return byId;
    }

    /// <summary>Number of VOLUME_OPS records in this epoch.</summary>
    public int VolumeBatchCount => _volumes.Count;

    /// <summary>
    /// The bodies of the epoch's VOLUME_OPS records, in stream order (valid until the epoch is disposed: the buffers
    /// are pooled). Opaque here; <see cref="ApplyVolumes"/> hands them to the domain's replica.
    /// </summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> VolumeBatches
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _volumes.ConvertAll(v => v.Body);
        }
    }

    /// <summary>Bytes of VOLUME_OPS bodies in this epoch.</summary>
    public long VolumeBytes
    {
        get
        {
            long n = 0;
            foreach (var v in _volumes) n += v.Length;
            return n;
        }
    }

    /// <summary>
    /// Has <paramref name="replica"/> judge every volume batch of the epoch (framing and bounds) without applying any:
    /// <see cref="InvalidDataException"/> if one is bad, or if the epoch carries volume operations and the receiving
    /// domain has no volumes (<paramref name="replica"/> null). Nothing is changed either way.
    /// </summary>
    public void ValidateVolumes(IVolumeReplica? replica)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_volumes.Count == 0) return;
        if (replica is null)
            throw new InvalidDataException($"checkpoint {Number} carries {_volumes.Count} batches of volume operations, but the receiving domain has no volumes");
        if (ReferenceEquals(_volumesValidatedFor, replica)) return;
        foreach (var v in _volumes) replica.Validate(v.Buffer.AsSpan(0, v.Length));
        _volumesValidatedFor = replica;
    }

    /// <summary>
    /// Applies the epoch's volume batches to <paramref name="replica"/>: all are validated first (a bad one applies
    /// nothing), then applied in stream order. At most once. What <see cref="IVolumeReplica.Apply"/> throws (disk
    /// full, a path missing) propagates: the receiver's copy is then inconsistent with the sender's and must not run.
    /// </summary>
    public void ApplyVolumes(IVolumeReplica? replica)
    {
        ValidateVolumes(replica);
        if (_volumes.Count == 0) return;
        if (_volumesApplied) throw new InvalidOperationException($"the volume operations of epoch {Number} were already applied");
        _volumesApplied = true;
        foreach (var v in _volumes) replica!.Apply(v.Buffer.AsSpan(0, v.Length));
    }

    /// <summary>The kernel state, when this epoch carries one.</summary>
    public byte[]? KernelState { get; }

    /// <summary>The program's exit, when this is an exit epoch (EXIT alone, closed by CHECKPOINT_END).</summary>
    public ExitRecord? Exit { get; init; }

    /// <summary>Whether <see cref="ApplyTo"/> has run.</summary>
    public bool IsApplied => _applied;

    /// <summary>The pages in stream order: frame number and encoding.</summary>
    public IEnumerable<(ulong Pfn, PageEncoding Encoding)> Pages
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Enumerate();
        }
    }

    private IEnumerable<(ulong Pfn, PageEncoding Encoding)> Enumerate()
    {
        foreach (var batch in _batches.ToArray())
            for (int i = 0; i < batch.Count; i++)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                ulong info = batch.Info(i);
                yield return (info & StreamFormat.MaxPfn, (PageEncoding)(info >> 60));
            }
    }

    /// <summary>
    /// Writes the epoch's pages into <paramref name="sink"/>, in stream order. XOR deltas are applied against the
    /// sink's current page content. Every PFN is checked against <see cref="IPageSink.PageCount"/> and
    /// <see cref="IPageSink.Accepts"/> first, so a mismatch changes nothing. An epoch is applied at most once.
    /// </summary>
    public void ApplyTo(IPageSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_applied) throw new InvalidOperationException($"epoch {Number} was already applied");

        ulong pages = sink.PageCount;
        foreach (var batch in _batches)
            for (int i = 0; i < batch.Count; i++)
            {
                ulong pfn = batch.Info(i) & StreamFormat.MaxPfn;
                if (pfn >= pages)
                    throw new CheckpointStreamException(CheckpointStreamError.TargetMismatch,
                        $"epoch {Number} carries page 0x{pfn:x}, beyond the target's {pages} pages; nothing was applied");
                if (!sink.Accepts(pfn))
                    throw new CheckpointStreamException(CheckpointStreamError.TargetMismatch,
                        $"epoch {Number} carries page 0x{pfn:x}, which the target does not accept; nothing was applied");
            }

        _applied = true;
        int parts = sink.ConcurrentPages && PageCount >= ParallelApplyPages ? Math.Min(Environment.ProcessorCount, 4) : 1;
        if (parts <= 1)
        {
            ApplyPart(sink, 0, 1);
            return;
        }
        // Each page frame belongs to one part (by 64-page runs), and each part walks the whole epoch in stream
        // order: a page sent twice in the epoch is still written in order, by the same thread.
        try
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part => ApplyPart(sink, part, parts));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
    }

    /// <summary>Epochs of at least this many pages are applied on several threads when the sink allows it.</summary>
    internal const int ParallelApplyPages = 4096;

    private void ApplyPart(IPageSink sink, int part, int parts)
    {
        byte[] delta = ArrayPool<byte>.Shared.Rent(StreamFormat.PageSize);
        // Large epochs (a sync's or a migration's rounds) fill memory in runs when the sink prefers it.
        var run = sink.PrefersRuns && PageCount >= ParallelApplyPages ? new PageRun(sink) : null;
        try
        {
            foreach (var batch in _batches) batch.Apply(sink, delta, part, parts, run);
            run?.Flush();
        }
        finally
        {
            run?.Dispose();
            ArrayPool<byte>.Shared.Return(delta);
        }
    }

    /// <summary>Returns the page buffers to the pool.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var batch in _batches) batch.Release();
        foreach (var batch in _volumes) batch.Release();
        _batches.Clear();
    }
}

/// <summary>
/// One buffered PAGE_DATA body (validated after the epoch's checksum). A large body may be judged early, on a
/// thread-pool worker while the reader reads on (<see cref="StartPrecheck"/>); the verdict is only used once the
/// epoch's checksum verified (<see cref="EnsureValid"/>), so a damaged epoch is still reported as such.
/// </summary>
internal sealed class PageBatch(byte[] buffer, int length) : IThreadPoolWorkItem
{
    /// <summary>Bodies at least this long are judged early, on another thread.</summary>
    internal const int PrecheckBytes = 256 << 10;

    private const int NotStarted = 0, Running = 1, Good = 2, Bad = 3;
    [ThreadStatic] private static byte[]? t_scratch;

    private byte[]? _buffer = buffer;
    private int _check;

    public int Length { get; } = length;

    public int Count { get; private set; }

    private ReadOnlySpan<byte> Body => _buffer.AsSpan(0, Length);

    public ulong Info(int i) =>
        BinaryPrimitives.ReadUInt64LittleEndian(Body[(StreamFormat.PageDataFixedSize + i * 8)..]);

    private int DataLength(int i) =>
        (int)BinaryPrimitives.ReadUInt32LittleEndian(Body[(StreamFormat.PageDataFixedSize + Count * 8 + i * 4)..]);

    /// <summary>
    /// Checks the body against the format: count, reserved fields, descriptors, lengths adding up to the body,
    /// and every compressed page decoding to exactly one page (into <paramref name="scratch"/>).
    /// </summary>
    public void Validate(ulong epoch, Span<byte> scratch)
    {
        ReadOnlySpan<byte> body = Body;
        string where = $"record PAGE_DATA in epoch {epoch}";
        if (body.Length < StreamFormat.PageDataFixedSize)
            throw Invalid($"{where}: body of {body.Length} bytes is shorter than its fixed part");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(body);
        if (count is 0 or > StreamFormat.MaxPagesPerRecord)
            throw Invalid($"{where}: page count {count} is outside 1..{StreamFormat.MaxPagesPerRecord}");
        if (BinaryPrimitives.ReadUInt32LittleEndian(body[4..]) != 0)
            throw Invalid($"{where}: reserved field is not zero");
        long dataStart = StreamFormat.PageDataFixedSize + count * 12L;
        if (dataStart > body.Length)
            throw Invalid($"{where}: {count} pages need {dataStart} bytes of descriptors, the body has {body.Length}");
        Count = (int)count;

        long offset = dataStart;
        for (int i = 0; i < Count; i++)
        {
            ulong info = Info(i);
            ulong pfn = info & StreamFormat.MaxPfn;
            if ((info >> 52 & 0xff) != 0)
                throw Invalid($"{where}: page 0x{pfn:x} has reserved descriptor bits set (0x{info:x16})");
            var encoding = (PageEncoding)(info >> 60);
            int length = DataLength(i);
            bool lengthOk = encoding switch
            {
                PageEncoding.Raw => length == StreamFormat.PageSize,
                PageEncoding.Zero or PageEncoding.Unchanged => length == 0,
                PageEncoding.Lz4 or PageEncoding.XorLz4 => length is > 0 and <= PageCodec.MaxCompressedLength,
                _ => throw Invalid($"{where}: page 0x{pfn:x} has unknown encoding {(int)encoding}"),
            };
            if (!lengthOk)
                throw Invalid($"{where}: page 0x{pfn:x} encoded {StreamFormat.Name(encoding)} has invalid length {length}");
            if (offset + length > body.Length)
                throw Invalid($"{where}: page data overruns the record ({offset + length} > {body.Length} bytes)");
            if (encoding is PageEncoding.Lz4 or PageEncoding.XorLz4
                && !PageCodec.Decodes(body.Slice((int)offset, length), scratch))
                throw Invalid($"{where}: page 0x{pfn:x} ({StreamFormat.Name(encoding)}) does not decode to {StreamFormat.PageSize} bytes");
            offset += length;
        }
        if (offset != body.Length)
            throw Invalid($"{where}: {body.Length - offset} bytes after the last page's data");
    }

    /// <summary>Queues the early judgement of a large body (a small one is judged in <see cref="EnsureValid"/>).</summary>
    public void StartPrecheck()
    {
        if (Length >= PrecheckBytes && Environment.ProcessorCount > 1)
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        if (Interlocked.CompareExchange(ref _check, Running, NotStarted) != NotStarted) return;
        int verdict;
        try
        {
            Validate(0, t_scratch ??= new byte[StreamFormat.PageSize]);
            verdict = Good;
        }
        catch (Exception)
        {
            verdict = Bad;
        }
        lock (this)
        {
            _check = verdict;
            Monitor.PulseAll(this);
        }
    }

    /// <summary>
    /// After the epoch's checksum verified: the body's judgement — taken from the early check when it ran (a body
    /// it found bad is judged again here, for the exception and its message), made here otherwise.
    /// </summary>
    public void EnsureValid(ulong epoch, Span<byte> scratch)
    {
        if (Interlocked.CompareExchange(ref _check, Running, NotStarted) == NotStarted)
        {
            bool good = false;
            try
            {
                Validate(epoch, scratch);
                good = true;
            }
            finally
            {
                lock (this) _check = good ? Good : Bad; // never left Running: Release waits for that to end
            }
            return;
        }
        if (WaitForPrecheck() == Good) return;
        Validate(epoch, scratch);
        throw new InvalidOperationException("a PAGE_DATA body judged bad on a worker passed a second judgement"); // deterministic: unreachable
    }

    private int WaitForPrecheck()
    {
        lock (this)
        {
            while (_check == Running) Monitor.Wait(this);
            return _check;
        }
    }

    public void Apply(IPageSink sink, Span<byte> delta, int part = 0, int parts = 1, PageRun? run = null)
    {
        ReadOnlySpan<byte> body = Body;
        int offset = StreamFormat.PageDataFixedSize + Count * 12;
        for (int i = 0; i < Count; i++)
        {
            ulong info = Info(i);
            ulong pfn = info & StreamFormat.MaxPfn;
            int length = DataLength(i);
            ReadOnlySpan<byte> data = body.Slice(offset, length);
            offset += length;
            if (parts > 1 && (int)(pfn >> 6) % parts != part) continue;
            var encoding = (PageEncoding)(info >> 60);
            if (run != null)
            {
                // Whole pages join the run (a page that does not follow it ends it first); anything else is written
                // after the run before it, so pages are still written in stream order.
                if (encoding is PageEncoding.Raw or PageEncoding.Zero or PageEncoding.Lz4)
                {
                    Span<byte> page = run.Next(pfn);
                    if (encoding == PageEncoding.Raw) data.CopyTo(page);
                    else if (encoding == PageEncoding.Zero) page.Clear();
                    else PageCodec.TryDecompress(data, page); // validated: cannot fail
                    continue;
                }
                run.Flush();
            }
            switch (encoding)
            {
                case PageEncoding.Unchanged:
                    break;
                case PageEncoding.Raw:
                    data.CopyTo(Target(sink, pfn));
                    break;
                case PageEncoding.Zero:
                    Target(sink, pfn).Clear();
                    break;
                case PageEncoding.Lz4:
                    PageCodec.TryDecompress(data, Target(sink, pfn)); // validated: cannot fail
                    break;
                case PageEncoding.XorLz4:
                    PageCodec.TryDecompress(data, delta);
                    PageCodec.XorInPlace(Target(sink, pfn), delta);
                    break;
            }
        }
    }

    public void Release()
    {
        // A worker still judging the body is waited for: the buffer goes back to the pool only once nobody reads it.
        if (Interlocked.CompareExchange(ref _check, Bad, NotStarted) != NotStarted) WaitForPrecheck();
        if (_buffer is { Length: > 0 } buffer) ArrayPool<byte>.Shared.Return(buffer);
        _buffer = null;
    }

    private static Span<byte> Target(IPageSink sink, ulong pfn)
    {
        Span<byte> page = sink.GetPage(pfn);
        if (page.Length != StreamFormat.PageSize)
            throw new InvalidOperationException($"the page sink returned {page.Length} bytes for page 0x{pfn:x}, not {StreamFormat.PageSize}");
        return page;
    }

    private static CheckpointStreamException Invalid(string message) =>
        new(CheckpointStreamError.InvalidRecord, message);
}

/// <summary>
/// Whole pages of consecutive frames gathered for one <see cref="IPageSink.WriteRun"/> (at most <see cref="Pages"/>),
/// so that a large epoch fills fresh memory without a fault per page. One per applying thread; pooled buffer.
/// </summary>
internal sealed class PageRun(IPageSink sink) : IDisposable
{
    internal const int Pages = 64;
    private const int P = StreamFormat.PageSize;
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(Pages * P);
    private ulong _first;
    private int _count;

    /// <summary>The buffer for page <paramref name="pfn"/>, to fill now: written with the run, in order.</summary>
    public Span<byte> Next(ulong pfn)
    {
        if (_count == Pages || (_count > 0 && pfn != _first + (ulong)_count)) Flush();
        if (_count == 0) _first = pfn;
        return _buffer.AsSpan(_count++ * P, P);
    }

    /// <summary>Writes the gathered pages (if any) to the sink.</summary>
    public void Flush()
    {
        if (_count == 0) return;
        sink.WriteRun(_first, _buffer.AsSpan(0, _count * P));
        _count = 0;
    }

    public void Dispose()
    {
        if (_buffer is { } b) ArrayPool<byte>.Shared.Return(b);
        _buffer = null;
    }
}
