using System.Buffers.Binary;

namespace Remus.Checkpoint.Stream;

/// <summary>
/// The pages of one PAGE_DATA record on their way out of a <see cref="CheckpointWriter"/>, in three stages:
/// <list type="number">
/// <item><see cref="AddRaw"/> / <see cref="AddCompressed"/>, on the writer's thread, in stream order: the one read of
/// the source page (a private snapshot), the zero test, and every decision that involves the page cache (unchanged,
/// XOR against the cached copy, the cache's update) — the cache's state evolves exactly as in a serial writer;</item>
/// <item><see cref="RunChunks"/>: the LZ4 work, chunk by chunk, on as many threads as take part (thread-pool workers
/// queued by <see cref="Submit"/> and the writer's thread, which helps when it needs the batch); each page's output
/// goes to a fixed slot of the record buffer, so chunks never share bytes;</item>
/// <item><see cref="Frame"/>, on the writer's thread again: the data moved together behind the descriptors, the
/// record header, the padding — the same bytes a serial writer produces.</item>
/// </list>
/// Every buffer is allocated once, with the batch; nothing is allocated per page or per record.
/// </summary>
internal sealed class EncodeBatch : IThreadPoolWorkItem
{
    /// <summary>Pages per unit of parallel work (128 KiB of input).</summary>
    public const int ChunkPages = 32;

    private const int P = StreamFormat.PageSize;

    private readonly int _capacity;
    private readonly int _dataStart; // the data region starts here; the metadata is written right before it
    private readonly ulong[] _pfns;
    private readonly PageEncoding[] _encoding; // before encoding, Lz4 / XorLz4 mean "to compress"
    private readonly int[] _length;
    private readonly byte[]? _pages;  // snapshots of the source pages (compressing writers)
    private readonly byte[]? _deltas; // XOR deltas against the cache (compressing writers)
    private readonly byte[] _record;

    // Who encodes which chunk: one word, changed only by compare-and-swap, so that a helper that runs late (its
    // submission long finished, the batch refilled) can never take a chunk twice nor one of a batch not yet
    // submitted: bits 32-63 the submission's generation, 16-31 its number of chunks, 0-15 the next chunk to take.
    private long _claim;
    private int _chunks, _doneChunks;
    private bool _submitted;
    private Exception? _error;

    public EncodeBatch(int capacity, bool compress, int headerSize)
    {
        _capacity = capacity;
        _dataStart = headerSize + StreamFormat.PageDataFixedSize + capacity * 12;
        _pfns = new ulong[capacity];
        _encoding = new PageEncoding[capacity];
        _length = new int[capacity];
        if (compress)
        {
            _pages = new byte[capacity * P];
            _deltas = new byte[capacity * P];
        }
        _record = new byte[_dataStart + capacity * P + StreamFormat.Alignment];
    }

    /// <summary>Pages added since the last <see cref="Reset"/>.</summary>
    public int Count { get; private set; }

    public bool IsFull => Count == _capacity;

    public bool IsEmpty => Count == 0;

    /// <summary>Whether every chunk has been encoded (true for a batch that needs no encoding work).</summary>
    public bool IsEncoded => Volatile.Read(ref _doneChunks) >= _chunks;

    /// <summary>An uncompressed page: copied into its slot of the record at once.</summary>
    public void AddRaw(ulong pfn, ReadOnlySpan<byte> page)
    {
        int i = Count;
        page.CopyTo(Slot(i));
        Set(i, pfn, PageEncoding.Raw, P);
    }

    /// <summary>
    /// A page of a compressing writer: one read of the source into a private snapshot (the page may be live guest
    /// memory that changes while the guest runs, and what is encoded and what the cache remembers must be the very
    /// same bytes, or later XOR deltas would rebuild a different page on the receiver), then the cache decisions.
    /// </summary>
    public void AddCompressed(ulong pfn, ReadOnlySpan<byte> source, PageCache cache)
    {
        int i = Count;
        // The zero test reads the source itself: a zero page is neither copied nor cached, so there is nothing its
        // encoding and the cache could disagree on (were it written since, the dirty log has it for the next round).
        if (PageCodec.IsZero(source))
        {
            cache.Remove(pfn); // a zero page is as cheap to send whole as any delta
            Set(i, pfn, PageEncoding.Zero, 0);
            return;
        }
        Span<byte> page = _pages.AsSpan(i * P, P);
        source.CopyTo(page);
        if (cache.TryGet(pfn, out Span<byte> cached))
        {
            if (page.SequenceEqual(cached)) Set(i, pfn, PageEncoding.Unchanged, 0);
            else
            {
                PageCodec.Xor(page, cached, _deltas.AsSpan(i * P, P));
                page.CopyTo(cached);
                Set(i, pfn, PageEncoding.XorLz4, 0);
            }
        }
        else
        {
            Span<byte> slot = cache.Insert(pfn);
            if (!slot.IsEmpty) page.CopyTo(slot);
            Set(i, pfn, PageEncoding.Lz4, 0);
        }
    }

    private void Set(int i, ulong pfn, PageEncoding encoding, int length)
    {
        _pfns[i] = pfn;
        _encoding[i] = encoding;
        _length[i] = length;
        Count = i + 1;
    }

    /// <summary>
    /// Makes the batch's encoding work available: <paramref name="helpers"/> thread-pool workers are asked to take
    /// chunks of it (0: it is all done by the writer's thread in <see cref="Finish"/>).
    /// </summary>
    public void Submit(int helpers)
    {
        _chunks = _pages is null ? 0 : (Count + ChunkPages - 1) / ChunkPages;
        _doneChunks = 0;
        _error = null;
        _submitted = true;
        long generation = (Volatile.Read(ref _claim) >> 32) + 1;
        Volatile.Write(ref _claim, generation << 32 | (long)_chunks << 16); // published last
        if (_chunks < 2) helpers = 0; // not worth a thread's wake-up
        for (int k = 0; k < Math.Min(helpers, _chunks - 1); k++)
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute() => RunChunks();

    /// <summary>Encodes chunks until none is left to take.</summary>
    private void RunChunks()
    {
        while (TryClaim(out int c))
        {
            try
            {
                EncodeChunk(c);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            if (Interlocked.Increment(ref _doneChunks) == _chunks)
                lock (this) Monitor.PulseAll(this);
        }
    }

    private bool TryClaim(out int chunk)
    {
        while (true)
        {
            long claim = Volatile.Read(ref _claim);
            int chunks = (int)(claim >> 16 & 0xffff), next = (int)(claim & 0xffff);
            chunk = next;
            if (next >= chunks) return false;
            if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) == claim) return true;
        }
    }

    /// <summary>On the writer's thread: helps with what is left, then waits for the chunks other threads took.</summary>
    public void Finish()
    {
        if (!_submitted) Submit(0);
        RunChunks();
        if (Volatile.Read(ref _doneChunks) < _chunks)
            lock (this)
                while (Volatile.Read(ref _doneChunks) < _chunks) Monitor.Wait(this);
        if (_error is { } error) throw new InvalidOperationException("encoding a page failed", error);
    }

    private void EncodeChunk(int chunk)
    {
        int end = Math.Min(Count, (chunk + 1) * ChunkPages);
        for (int i = chunk * ChunkPages; i < end; i++)
        {
            PageEncoding encoding = _encoding[i];
            if (encoding is not (PageEncoding.Lz4 or PageEncoding.XorLz4)) continue;
            ReadOnlySpan<byte> input = (encoding == PageEncoding.Lz4 ? _pages : _deltas).AsSpan(i * P, P);
            int length = PageCodec.Compress(input, Slot(i));
            if (length == 0)
            {
                _pages.AsSpan(i * P, P).CopyTo(Slot(i));
                (encoding, length) = (PageEncoding.Raw, P);
            }
            _encoding[i] = encoding;
            _length[i] = length;
        }
    }

    private Span<byte> Slot(int i) => _record.AsSpan(_dataStart + i * P, P);

    /// <summary>
    /// After <see cref="Finish"/>: the whole record (header, body, padding) as the stream carries it. Counts each
    /// page's encoding into <paramref name="byEncoding"/>.
    /// </summary>
    public ReadOnlySpan<byte> Frame(uint version, long[] byEncoding)
    {
        int count = Count;
        // Move each page's data down to follow the previous one (never upward: the write position never passes a slot).
        int at = _dataStart;
        for (int i = 0; i < count; i++)
        {
            int length = _length[i];
            int slot = _dataStart + i * P;
            if (length > 0 && slot != at) _record.AsSpan(slot, length).CopyTo(_record.AsSpan(at));
            at += length;
            byEncoding[(int)_encoding[i]]++;
        }
        int dataLength = at - _dataStart;

        int h = RecordHeader.Size(version);
        int metaLength = h + StreamFormat.PageDataFixedSize + count * 12;
        int start = _dataStart - metaLength;
        long bodyLength = metaLength - h + dataLength;
        Span<byte> meta = _record.AsSpan(start, metaLength);
        RecordHeader.Write(meta, RecordType.PageData, (uint)bodyLength, version);
        BinaryPrimitives.WriteUInt32LittleEndian(meta[h..], (uint)count);
        BinaryPrimitives.WriteUInt32LittleEndian(meta[(h + 4)..], 0);
        Span<byte> descriptors = meta[(h + StreamFormat.PageDataFixedSize)..];
        for (int i = 0; i < count; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(descriptors[(i * 8)..], _pfns[i] | (ulong)_encoding[i] << 60);
        Span<byte> lengths = descriptors[(count * 8)..];
        for (int i = 0; i < count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(lengths[(i * 4)..], (uint)_length[i]);
        int pad = StreamFormat.PaddingFor(bodyLength);
        _record.AsSpan(at, pad).Clear();
        return _record.AsSpan(start, metaLength + dataLength + pad);
    }

    /// <summary>Empties the batch for reuse.</summary>
    public void Reset()
    {
        Count = 0;
        Volatile.Write(ref _claim, ((Volatile.Read(ref _claim) >> 32) + 1) << 32); // a new generation, nothing to take
        _chunks = 0;
        _doneChunks = 0;
        _submitted = false;
        _error = null;
    }
}
