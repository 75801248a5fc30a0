using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// eventfd (fs/eventfd.c): a 64-bit counter. A read takes the whole count (EFD_SEMAPHORE: one) and waits while it
/// is 0; a write adds and waits while the sum would pass 2^64-2. Readable while the count is non-zero, writable while
/// another 1 fits.
/// </summary>
internal sealed class EventFdFile(ulong initial, bool semaphore) : FileDescription
{
    public const ulong Max = ulong.MaxValue - 1;

    public ulong Count { get; set; } = initial;
    public bool Semaphore { get; } = semaphore;
    private readonly WaitQueue _queue = new();

    public override WaitQueue Queue => _queue;

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (buffer.Length < 8) return -Errno.EINVAL;
        if (Count == 0) return -Errno.EAGAIN;
        ulong value = Semaphore ? 1 : Count;
        Count -= value;
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
        _queue.Notify(PollEvents.Writable);
        return 8;
    }

    public override long Write(ReadOnlySpan<byte> data)
    {
        if (data.Length != 8) return -Errno.EINVAL; // the host kernel (6.18) refuses any other size
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(data);
        if (value == ulong.MaxValue) return -Errno.EINVAL;
        if (Max - Count < value) return -Errno.EAGAIN;
        Count += value;
        _queue.Notify(PollEvents.Readable);
        return 8;
    }

    public override PollEvents Readiness()
    {
        var mask = PollEvents.None;
        if (Count > 0) mask |= PollEvents.Readable;
        if (Count == ulong.MaxValue) mask |= PollEvents.Err;
        if (Count < Max) mask |= PollEvents.Writable;
        return mask;
    }

    public override long Stat(Span<byte> st) => AnonInode.Stat(st);
}

/// <summary>fstat of the files Linux backs with its single anonymous inode (eventfd, timerfd, epoll): mode 0600, no type.</summary>
internal static class AnonInode
{
    public static long Stat(Span<byte> st)
    {
        st.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);        // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], 0x180);    // st_mode: 0600
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], 4096);      // st_blksize
        return 0;
    }
}
