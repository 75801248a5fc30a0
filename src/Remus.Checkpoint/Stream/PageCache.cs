namespace Remus.Checkpoint.Stream;

/// <summary>
/// The sender's memory of the last content it sent for recently sent pages, bounded in bytes and evicted with
/// the CLOCK (second chance) algorithm. A cached page's content equals, by construction, the receiver's copy of
/// that page, which is what lets the sender send an XOR delta. Slots live in 1 MiB chunks allocated on first use;
/// after warm-up no operation allocates.
/// </summary>
internal sealed class PageCache
{
    private const int ChunkPages = 256;
    private readonly int _capacity;
    private readonly Dictionary<ulong, int> _slots;
    private readonly byte[]?[] _chunks;
    private readonly ulong[] _slotPfn;
    private readonly bool[] _referenced;
    private readonly int[] _free;
    private int _freeCount;
    private int _used;
    private int _hand;

    public PageCache(long capacityBytes)
    {
        _capacity = (int)Math.Min(capacityBytes / StreamFormat.PageSize, int.MaxValue / 2);
        _slots = new Dictionary<ulong, int>(Math.Min(_capacity, 1 << 16));
        _chunks = new byte[]?[(_capacity + ChunkPages - 1) / ChunkPages];
        _slotPfn = new ulong[_capacity];
        _referenced = new bool[_capacity];
        _free = new int[_capacity];
    }

    /// <summary>Maximum number of pages kept.</summary>
    public int Capacity => _capacity;

    /// <summary>Pages currently kept.</summary>
    public int Count => _slots.Count;

    /// <summary>Pages dropped to make room since creation.</summary>
    public long Evictions { get; private set; }

    /// <summary>The cached content of <paramref name="pfn"/>, writable so that the caller can update it.</summary>
    public bool TryGet(ulong pfn, out Span<byte> content)
    {
        if (_slots.TryGetValue(pfn, out int slot))
        {
            _referenced[slot] = true;
            content = SlotMemory(slot);
            return true;
        }
        content = default;
        return false;
    }

    /// <summary>Makes room for <paramref name="pfn"/> (not cached) and returns its slot to fill; empty when disabled.</summary>
    public Span<byte> Insert(ulong pfn)
    {
        if (_capacity == 0) return default;
        int slot;
        if (_freeCount > 0) slot = _free[--_freeCount];
        else if (_used < _capacity) slot = _used++;
        else
        {
            // All slots hold pages: advance the hand, giving referenced pages a second chance.
            while (_referenced[_hand])
            {
                _referenced[_hand] = false;
                _hand = (_hand + 1) % _capacity;
            }
            slot = _hand;
            _hand = (_hand + 1) % _capacity;
            _slots.Remove(_slotPfn[slot]);
            Evictions++;
        }
        _slots.Add(pfn, slot);
        _slotPfn[slot] = pfn;
        _referenced[slot] = false;
        return SlotMemory(slot);
    }

    /// <summary>Forgets <paramref name="pfn"/> (e.g. it became a zero page, which costs nothing to send whole).</summary>
    public void Remove(ulong pfn)
    {
        if (_slots.Remove(pfn, out int slot))
        {
            _referenced[slot] = false;
            _free[_freeCount++] = slot;
        }
    }

    private Span<byte> SlotMemory(int slot)
    {
        byte[] chunk = _chunks[slot / ChunkPages] ??= new byte[Math.Min(ChunkPages, _capacity - slot / ChunkPages * ChunkPages) * StreamFormat.PageSize];
        return chunk.AsSpan(slot % ChunkPages * StreamFormat.PageSize, StreamFormat.PageSize);
    }
}
