using System.Buffers.Binary;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// statx (fs/stat.c): what newfstatat finds, in struct statx. Rust's std and newer glibc ask statx first (Rust falls
/// back to fstat on ENOSYS, but Linux has it, so we do too). The basic fields only: no birth time, no mount id.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int AtNoAutomount = 0x800, AtStatxSyncType = 0x6000;
    private const uint StatxBasicStats = 0x7ff, StatxReserved = 0x80000000;
    private const int StatxSize = 256;

    private long SysStatx(int dirfd, ulong pathAddr, int flags, uint mask, ulong bufAddr)
    {
        if ((flags & ~(AtSymlinkNoFollow | AtNoAutomount | AtEmptyPath | AtStatxSyncType)) != 0) return -Errno.EINVAL;
        if ((flags & AtStatxSyncType) == AtStatxSyncType) return -Errno.EINVAL;
        if ((mask & StatxReserved) != 0) return -Errno.EINVAL;
        // Since Linux 6.11 a NULL path with AT_EMPTY_PATH means the fd itself.
        string path = pathAddr == 0 && (flags & AtEmptyPath) != 0 ? "" : Memory.ReadCString(pathAddr);
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = StatAt(dirfd, path, flags, st);
        if (r != 0) return r;
        Span<byte> sx = stackalloc byte[StatxSize];
        ToStatx(st, sx);
        Memory.Write(bufAddr, sx);
        return 0;
    }

    /// <summary>struct stat (x86-64) to struct statx, with STATX_BASIC_STATS in stx_mask.</summary>
    private static void ToStatx(ReadOnlySpan<byte> st, Span<byte> sx)
    {
        sx.Clear();
        ulong dev = BinaryPrimitives.ReadUInt64LittleEndian(st), rdev = BinaryPrimitives.ReadUInt64LittleEndian(st[40..]);
        BinaryPrimitives.WriteUInt32LittleEndian(sx, StatxBasicStats);                                           // stx_mask
        BinaryPrimitives.WriteUInt32LittleEndian(sx[4..], (uint)BinaryPrimitives.ReadInt64LittleEndian(st[56..])); // stx_blksize
        BinaryPrimitives.WriteUInt32LittleEndian(sx[16..], (uint)BinaryPrimitives.ReadUInt64LittleEndian(st[16..])); // stx_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(sx[20..], BinaryPrimitives.ReadUInt32LittleEndian(st[28..]));    // stx_uid
        BinaryPrimitives.WriteUInt32LittleEndian(sx[24..], BinaryPrimitives.ReadUInt32LittleEndian(st[32..]));    // stx_gid
        BinaryPrimitives.WriteUInt16LittleEndian(sx[28..], (ushort)BinaryPrimitives.ReadUInt32LittleEndian(st[24..])); // stx_mode
        BinaryPrimitives.WriteUInt64LittleEndian(sx[32..], BinaryPrimitives.ReadUInt64LittleEndian(st[8..]));     // stx_ino
        BinaryPrimitives.WriteUInt64LittleEndian(sx[40..], BinaryPrimitives.ReadUInt64LittleEndian(st[48..]));    // stx_size
        BinaryPrimitives.WriteUInt64LittleEndian(sx[48..], BinaryPrimitives.ReadUInt64LittleEndian(st[64..]));    // stx_blocks
        CopyTime(st[72..], sx[64..]);  // atime
        CopyTime(st[104..], sx[96..]); // ctime
        CopyTime(st[88..], sx[112..]); // mtime
        BinaryPrimitives.WriteUInt32LittleEndian(sx[128..], Major(rdev));
        BinaryPrimitives.WriteUInt32LittleEndian(sx[132..], Minor(rdev));
        BinaryPrimitives.WriteUInt32LittleEndian(sx[136..], Major(dev));
        BinaryPrimitives.WriteUInt32LittleEndian(sx[140..], Minor(dev));
    }

    /// <summary>struct timespec (sec, nsec: two 64-bit words) to struct statx_timestamp (s64 sec, u32 nsec, pad).</summary>
    private static void CopyTime(ReadOnlySpan<byte> ts, Span<byte> sxt)
    {
        BinaryPrimitives.WriteInt64LittleEndian(sxt, BinaryPrimitives.ReadInt64LittleEndian(ts));
        BinaryPrimitives.WriteUInt32LittleEndian(sxt[8..], (uint)BinaryPrimitives.ReadInt64LittleEndian(ts[8..]));
    }

    // The kernel's huge_encode_dev as glibc's gnu_dev_major/minor read it.
    private static uint Major(ulong dev) => (uint)(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL));
    private static uint Minor(ulong dev) => (uint)((dev & 0xff) | ((dev >> 12) & ~0xffUL));
}
