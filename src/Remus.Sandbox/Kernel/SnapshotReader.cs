namespace Remus.Sandbox.Kernel;

/// <summary>
/// The reader of a checkpoint's kernel state (and the network stack's parts of it): a <see cref="BinaryReader"/> over
/// the bytes already in memory whose <see cref="ReadBytes"/> refuses a length longer than what is left before it
/// allocates anything. The state comes from another host (issue 13: a receiver trusts no stream): a length field of
/// 2 GiB inside a KERNEL_STATE record of a few KiB must not allocate 2 GiB (BinaryReader allocates the count first).
/// </summary>
internal sealed class SnapshotReader(byte[] bytes, int index, int count) : BinaryReader(new MemoryStream(bytes, index, count, writable: false))
{
    public SnapshotReader(byte[] bytes) : this(bytes, 0, bytes.Length) { }

    public override byte[] ReadBytes(int count)
    {
        long left = BaseStream.Length - BaseStream.Position;
        if (count < 0 || count > left)
            throw new InvalidDataException($"the kernel state asks for {count} bytes where {left} are left");
        return base.ReadBytes(count);
    }
}
