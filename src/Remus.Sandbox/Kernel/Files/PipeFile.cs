using System.Buffers;
using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// A pipe's buffer as Linux keeps it (fs/pipe.c): a ring of at most <see cref="MaxSlots"/> page-sized slots. A write
/// first merges its sub-page remainder into the last slot when it fits, then fills fresh slots a page at a time, so
/// the pipe holds exactly what Linux's holds for the same writes (64 KiB of 1-byte writes, but sixteen 3000-byte
/// writes only). A read drains slots from the oldest. In packet mode (O_DIRECT) every write is one slot and a read
/// takes at most one.
/// </summary>
internal sealed class Pipe
{
    public const int PageSize = 4096, DefaultSlots = 16;

    /// <summary>One slot: a rented page holding [Offset, Offset+Length).</summary>
    internal sealed class Slot
    {
        public byte[] Page = ArrayPool<byte>.Shared.Rent(PageSize);
        public int Offset, Length;
        public bool Packet;
    }

    private readonly List<Slot> _slots = [];

    public WaitQueue Queue { get; } = new();
    public int MaxSlots { get; set; } = DefaultSlots;
    public int Readers { get; set; }
    public int Writers { get; set; }

    /// <summary>An identity for fstat's st_ino (not checkpointed: Linux's pipe inode numbers are arbitrary too).</summary>
    public ulong Inode { get; } = (ulong)Interlocked.Increment(ref s_inodes);
    private static long s_inodes = 1000;

    public IReadOnlyList<Slot> Slots => _slots;
    public bool IsEmpty => _slots.Count == 0;
    public bool IsFull => _slots.Count >= MaxSlots;

    public int Available
    {
        get
        {
            int n = 0;
            foreach (var s in _slots) n += s.Length;
            return n;
        }
    }

    /// <summary>Takes up to buffer.Length bytes; 0 when empty. Notifies writers when a full pipe gets room.</summary>
    public int Read(Span<byte> buffer)
    {
        bool wasFull = IsFull;
        int done = 0;
        while (done < buffer.Length && _slots.Count > 0)
        {
            var s = _slots[0];
            int n = Math.Min(s.Length, buffer.Length - done);
            s.Page.AsSpan(s.Offset, n).CopyTo(buffer[done..]);
            done += n;
            s.Offset += n;
            s.Length -= n;
            if (s.Packet) s.Length = 0;
            if (s.Length == 0)
            {
                _slots.RemoveAt(0);
                ArrayPool<byte>.Shared.Return(s.Page);
            }
            if (s.Packet) break;
        }
        if (done > 0 && wasFull && !IsFull) Queue.Notify(PollEvents.Writable);
        return done;
    }

    /// <summary>
    /// Puts as much of <paramref name="data"/> as fits; returns the bytes taken (0 when full). Readers are notified
    /// of every write (Linux does so once the pipe has been polled, which is what edge-triggered epoll relies on).
    /// </summary>
    public int Write(ReadOnlySpan<byte> data, bool packet, bool merge)
    {
        int done = 0;
        int chars = data.Length & (PageSize - 1);
        if (merge && !packet && chars != 0 && _slots.Count > 0)
        {
            var last = _slots[^1];
            if (!last.Packet && last.Offset + last.Length + chars <= PageSize)
            {
                data[..chars].CopyTo(last.Page.AsSpan(last.Offset + last.Length));
                last.Length += chars;
                done = chars;
            }
        }
        while (done < data.Length && !IsFull)
        {
            int n = Math.Min(PageSize, data.Length - done);
            var s = new Slot { Length = n, Packet = packet };
            data.Slice(done, n).CopyTo(s.Page);
            _slots.Add(s);
            done += n;
        }
        if (done > 0) Queue.Notify(PollEvents.Readable);
        return done;
    }

    /// <summary>Puts a slot back as a checkpoint had it.</summary>
    public void AddSlot(ReadOnlySpan<byte> data, int offset, bool packet)
    {
        if (offset < 0 || offset + data.Length > PageSize || _slots.Count >= MaxSlots) throw new InvalidDataException("pipe slot");
        var s = new Slot { Offset = offset, Length = data.Length, Packet = packet };
        data.CopyTo(s.Page.AsSpan(offset));
        _slots.Add(s);
    }

    /// <summary>F_SETPIPE_SZ: the new size in bytes, or -EBUSY when the data does not fit.</summary>
    public long Resize(long bytes)
    {
        if (bytes <= 0 || bytes > 1 << 20) return bytes <= 0 ? -Errno.EINVAL : -Errno.EPERM;
        int slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)((bytes + PageSize - 1) / PageSize));
        if (slots < 1) slots = 1;
        if (slots < _slots.Count) return -Errno.EBUSY;
        bool wasFull = IsFull;
        MaxSlots = slots;
        if (wasFull && !IsFull) Queue.Notify(PollEvents.Writable);
        return (long)slots * PageSize;
    }

    public void Free()
    {
        foreach (var s in _slots) ArrayPool<byte>.Shared.Return(s.Page);
        _slots.Clear();
    }
}

/// <summary>One end of a pipe (pipe2): the read end or the write end, each its own open file.</summary>
internal sealed class PipeFile : FileDescription
{
    public PipeFile(Pipe pipe, bool writeEnd, int flags)
    {
        Pipe = pipe;
        IsWriteEnd = writeEnd;
        Flags = flags;
        if (writeEnd) pipe.Writers++;
        else pipe.Readers++;
    }

    public Pipe Pipe { get; }
    public bool IsWriteEnd { get; }
    private bool _released;

    private const int O_DIRECT = 0x4000;
    private bool Packet => (Flags & O_DIRECT) != 0;

    public override WaitQueue Queue => Pipe.Queue;

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (IsWriteEnd) return -Errno.EBADF;
        if (buffer.Length == 0) return 0;
        int n = Pipe.Read(buffer);
        if (n > 0) return n;
        return Pipe.Writers == 0 ? 0 : -Errno.EAGAIN;
    }

    public override long Write(ReadOnlySpan<byte> data) => Put(data, merge: true);

    public override long WriteContinued(ReadOnlySpan<byte> data) => Put(data, merge: false);

    private long Put(ReadOnlySpan<byte> data, bool merge)
    {
        if (!IsWriteEnd) return -Errno.EBADF;
        if (data.Length == 0) return 0;
        if (Pipe.Readers == 0) return -Errno.EPIPE;
        int n = Pipe.Write(data, Packet, merge);
        return n > 0 ? n : -Errno.EAGAIN;
    }

    public override PollEvents Readiness()
    {
        var mask = PollEvents.None;
        if (!IsWriteEnd)
        {
            if (!Pipe.IsEmpty) mask |= PollEvents.Readable;
            if (Pipe.Writers == 0) mask |= PollEvents.Hup;
        }
        else
        {
            if (!Pipe.IsFull) mask |= PollEvents.Writable;
            if (Pipe.Readers == 0) mask |= PollEvents.Err;
        }
        return mask;
    }

    public override long Stat(Span<byte> st)
    {
        st.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], Pipe.Inode);   // st_ino
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);           // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], 0x1180);      // st_mode: S_IFIFO | 0600
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], Pipe.PageSize); // st_blksize
        return 0;
    }

    public override void Release()
    {
        if (_released) return;
        _released = true;
        if (IsWriteEnd) Pipe.Writers--;
        else Pipe.Readers--;
        // The last reader or writer gone (not both): everyone waiting looks again (EOF, EPIPE, POLLHUP, POLLERR).
        if ((Pipe.Readers == 0) != (Pipe.Writers == 0)) Pipe.Queue.Notify(PollEvents.None);
        if (Pipe.Readers == 0 && Pipe.Writers == 0) Pipe.Free();
    }
}
