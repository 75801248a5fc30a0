using System.Buffers.Binary;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// A Remus checkpoint's KERNEL_STATE body: the sandbox kernel's state followed by the console output of that epoch
/// (which a backup re-emits on failover). <c>u32 kernelLength, kernel state, output</c>.
/// </summary>
internal static class RemusState
{
    public static byte[] Compose(byte[] kernel, byte[] output)
    {
        var b = new byte[4 + kernel.Length + output.Length];
        BinaryPrimitives.WriteInt32LittleEndian(b, kernel.Length);
        kernel.CopyTo(b, 4);
        output.CopyTo(b, 4 + kernel.Length);
        return b;
    }

    /// <summary>Bytes of the body <see cref="Compose(ReadOnlySpan{byte}, ReadOnlySpan{byte}, byte[])"/> makes.</summary>
    public static int Length(int kernel, int output) => checked(4 + kernel + output);

    /// <summary><see cref="Compose(byte[], byte[])"/> into <paramref name="into"/> (at least <see cref="Length"/> bytes; reused from epoch to epoch).</summary>
    public static ReadOnlySpan<byte> Compose(ReadOnlySpan<byte> kernel, ReadOnlySpan<byte> output, byte[] into)
    {
        var b = into.AsSpan(0, Length(kernel.Length, output.Length));
        BinaryPrimitives.WriteInt32LittleEndian(b, kernel.Length);
        kernel.CopyTo(b[4..]);
        output.CopyTo(b[(4 + kernel.Length)..]);
        return b;
    }

    public static (byte[] Kernel, byte[] Output) Split(byte[] state)
    {
        var (kernel, output) = SplitKernel(state);
        return (kernel.ToArray(), output);
    }

    /// <summary><see cref="Split"/> with the kernel state left in <paramref name="state"/> (not copied: the backup loads it at once).</summary>
    public static (ReadOnlyMemory<byte> Kernel, byte[] Output) SplitKernel(byte[] state)
    {
        int n = state.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(state) : -1;
        if (n < 0 || n > state.Length - 4) throw new InvalidDataException("corrupt Remus checkpoint state");
        return (state.AsMemory(4, n), state.AsSpan(4 + n).ToArray());
    }
}
