namespace Remus.Sandbox.Kernel;

/// <summary>
/// Socket addresses and buffers between the program and the socket calls: sockaddr in (move_addr_to_kernel) and out
/// (move_addr_to_user: truncated to the program's buffer, the whole length written back), and iovec arrays gathered
/// for a send and filled by a receive.
/// </summary>
internal sealed partial class SandboxKernel
{
    /// <summary>The largest sockaddr the calls take (struct sockaddr_storage).</summary>
    private const int MaxSockaddr = 128;

    /// <summary>Reads a sockaddr of <paramref name="length"/> bytes; null with -EINVAL in <paramref name="error"/> when the length is bad.</summary>
    private byte[]? ReadSockaddr(ulong addr, ulong length, out long error)
    {
        error = 0;
        if (length > MaxSockaddr) { error = -Errno.EINVAL; return null; }
        var b = new byte[(int)length];
        if (length > 0) Memory.Read(addr, b);
        return b;
    }

    /// <summary>
    /// Writes a sockaddr of <paramref name="full"/> length (of which <paramref name="address"/> holds the start) to
    /// <paramref name="addr"/>, truncated to the program's *<paramref name="lengthAddr"/>, and the whole length back.
    /// </summary>
    private long WriteSockaddr(ulong addr, ulong lengthAddr, ReadOnlySpan<byte> address, int full)
    {
        if (lengthAddr == 0) return 0;
        int room = (int)Memory.ReadU32(lengthAddr);
        if (room < 0) return -Errno.EINVAL;
        int n = Math.Min(Math.Min(room, full), address.Length);
        if (n > 0) Memory.Write(addr, address[..n]);
        Memory.WriteU32(lengthAddr, (uint)full);
        return 0;
    }

    /// <summary>An iovec array of the program: its (base, length) pairs and their total.</summary>
    private readonly struct UserIoVec
    {
        public readonly (ulong Base, long Length)[] Segments;
        public readonly long Total;

        public UserIoVec((ulong, long)[] segments, long total)
        {
            Segments = segments;
            Total = total;
        }

        /// <summary>One buffer (send, recvfrom).</summary>
        public static UserIoVec Single(ulong buf, long length) => new([(buf, length)], length);
    }

    /// <summary>Reads an iovec array (-EINVAL past UIO_MAXIOV or a total beyond 2 GiB).</summary>
    private long ReadIoVec(ulong iov, ulong count, out UserIoVec vec)
    {
        vec = default;
        if (count > MaxIov) return -Errno.EMSGSIZE;
        var segs = new (ulong, long)[count];
        long total = 0;
        for (ulong i = 0; i < count; i++)
        {
            ulong b = Memory.ReadU64(iov + i * 16), l = Memory.ReadU64(iov + i * 16 + 8);
            if (l > int.MaxValue) return -Errno.EINVAL;
            segs[i] = (b, (long)l);
            total += (long)l;
        }
        if (total > int.MaxValue) return -Errno.EINVAL;
        vec = new UserIoVec(segs, total);
        return 0;
    }

    /// <summary>
    /// Copies up to <paramref name="into"/>.Length bytes of the iovec starting at byte <paramref name="offset"/> of it;
    /// stops where the program's memory stops being readable. Returns the bytes copied (-EFAULT when none and some were asked).
    /// </summary>
    private long GatherIoVec(in UserIoVec vec, long offset, Span<byte> into)
    {
        int at = 0;
        long skip = offset;
        foreach (var (b, l) in vec.Segments)
        {
            if (at == into.Length) break;
            if (skip >= l) { skip -= l; continue; }
            int n = (int)Math.Min(l - skip, into.Length - at);
            int got = Memory.ReadPartial(b + (ulong)skip, into.Slice(at, n));
            at += got;
            skip = 0;
            if (got < n) break;
        }
        return at == 0 && into.Length > 0 ? -Errno.EFAULT : at;
    }

    /// <summary>Writes <paramref name="data"/> into the iovec from byte <paramref name="offset"/> of it.</summary>
    private void ScatterIoVec(in UserIoVec vec, long offset, ReadOnlySpan<byte> data)
    {
        long skip = offset;
        foreach (var (b, l) in vec.Segments)
        {
            if (data.IsEmpty) return;
            if (skip >= l) { skip -= l; continue; }
            int n = (int)Math.Min(l - skip, data.Length);
            Memory.Write(b + (ulong)skip, data[..n]);
            data = data[n..];
            skip = 0;
        }
    }
}
