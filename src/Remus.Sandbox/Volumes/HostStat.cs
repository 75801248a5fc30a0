using System.Buffers.Binary;

namespace Remus.Sandbox.Volumes;

/// <summary>The fields the replica reads of a Linux x86-64 <c>struct stat</c>.</summary>
internal readonly record struct HostStat(ulong Device, ulong Inode, ulong Links, uint Mode, long Size, long AtimeNs, long MtimeNs)
{
    public const uint TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000, Symlink = 0xA000;

    public uint Type => Mode & TypeMask;
    public uint Permissions => Mode & VolumeOpsFormat.ModeMask;
    public bool IsRegular => Type == Regular;
    public bool IsDirectory => Type == Directory;
    public bool IsSymlink => Type == Symlink;

    public static HostStat Parse(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(s),
        BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
        BinaryPrimitives.ReadInt64LittleEndian(s[48..]),
        BinaryPrimitives.ReadInt64LittleEndian(s[72..]) * 1_000_000_000 + BinaryPrimitives.ReadInt64LittleEndian(s[80..]),
        BinaryPrimitives.ReadInt64LittleEndian(s[88..]) * 1_000_000_000 + BinaryPrimitives.ReadInt64LittleEndian(s[96..]));
}
