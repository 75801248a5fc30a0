using System.Buffers;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Transfers between files and program memory that stop where the program's permissions stop, as Linux's
/// copy_to_user/copy_from_user do: a buffer that runs into a page the program may not write (or read) is filled
/// (or sent) up to it and the call returns the short count, or EFAULT when not one byte could move.
/// </summary>
internal sealed partial class SandboxKernel
{
    /// <summary>Fills a buffer from a file or device; returns a byte count or -errno.</summary>
    internal delegate long SpanFiller(Span<byte> buffer);

    /// <summary>Sends a buffer to a file or device; returns a byte count or -errno.</summary>
    internal delegate long SpanSender(ReadOnlySpan<byte> buffer);

    /// <summary>Reads (with <paramref name="fill"/>) into program memory at <paramref name="buf"/>, at most <paramref name="max"/> bytes.</summary>
    private long ReadIntoUser(ulong buf, ulong count, int max, SpanFiller fill)
    {
        if (count == 0) return fill([]);
        int n = (int)Memory.Accessible(buf, Math.Min(count, (ulong)max), write: true);
        if (n == 0) return -Errno.EFAULT;
        if (Memory.TryDirectWrite(buf, n, out var direct)) return fill(direct);
        byte[] tmp = ArrayPool<byte>.Shared.Rent(n);
        try
        {
            long r = fill(tmp.AsSpan(0, n));
            if (r > 0) Memory.Write(buf, tmp.AsSpan(0, (int)r));
            return r;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>Writes (with <paramref name="send"/>) from program memory at <paramref name="buf"/>, at most <paramref name="max"/> bytes.</summary>
    private long WriteFromUser(ulong buf, ulong count, int max, SpanSender send)
    {
        if (count == 0) return send([]);
        int n = (int)Memory.Accessible(buf, Math.Min(count, (ulong)max), write: false);
        if (n == 0) return -Errno.EFAULT;
        if (Memory.TryDirectRead(buf, n, out var direct)) return send(direct);
        byte[] tmp = ArrayPool<byte>.Shared.Rent(n);
        try
        {
            Memory.Read(buf, tmp.AsSpan(0, n));
            return send(tmp.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }
}
