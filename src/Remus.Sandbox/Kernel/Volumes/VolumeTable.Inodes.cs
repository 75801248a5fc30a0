using System.Buffers.Binary;

namespace Remus.Sandbox.Kernel.Volumes;

/// <summary>
/// The device and inode numbers the program sees for volume files. They are the guest's, not the host's: a copy of a
/// volume on a backup or a migration target has the same files under other host inode numbers (and another device),
/// and programs remember them — SQLite compares the inode of its open database with stat() of its path and turns the
/// database read-only ("moved", SQLITE_READONLY_DBMOVED) when they differ. So each volume has a fixed device number,
/// and each host inode seen gets a guest inode number on first sight, kept for as long as the domain lives; the
/// numbers of open files travel in the kernel state and are bound to the receiver's inodes when it reopens them.
/// </summary>
internal sealed partial class VolumeTable
{
    private readonly Dictionary<(ulong Dev, ulong Ino), ulong> _guestInodes = [];

    /// <summary>The next guest inode number to hand out (kernel state).</summary>
    public ulong NextInode { get; set; } = FirstInode;

    private const ulong FirstInode = 2;

    /// <summary>The guest device number of volume <paramref name="volume"/>: major 0 (anonymous, like tmpfs), minor 0x80 + index.</summary>
    public static ulong GuestDevice(int volume) => 0x80UL + (ulong)volume;

    /// <summary>The guest inode number of a host inode (given one on first sight).</summary>
    public ulong GuestInode(ulong hostDev, ulong hostIno)
    {
        if (_guestInodes.TryGetValue((hostDev, hostIno), out ulong ino)) return ino;
        ino = NextInode++;
        _guestInodes[(hostDev, hostIno)] = ino;
        return ino;
    }

    /// <summary>Binds a host inode to the guest inode number a checkpoint gave it (a receiver reopening an open file).</summary>
    public void BindInode(ulong hostDev, ulong hostIno, ulong guestIno) => _guestInodes[(hostDev, hostIno)] = guestIno;

    /// <summary>Forgets every binding (a checkpoint's state is about to be loaded: its open files bring theirs).</summary>
    public void ForgetInodes() => _guestInodes.Clear();

    /// <summary>Rewrites st_dev and st_ino of a struct stat of a file in volume <paramref name="volume"/> to the guest's.</summary>
    public void Virtualize(int volume, Span<byte> st)
    {
        ulong dev = BinaryPrimitives.ReadUInt64LittleEndian(st);
        ulong ino = BinaryPrimitives.ReadUInt64LittleEndian(st[8..]);
        BinaryPrimitives.WriteUInt64LittleEndian(st, GuestDevice(volume));
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], GuestInode(dev, ino));
    }

    /// <summary>Rewrites d_ino of each linux_dirent64 in <paramref name="entries"/> (read from a directory on host device <paramref name="hostDev"/>).</summary>
    public void VirtualizeEntries(ulong hostDev, Span<byte> entries)
    {
        int at = 0;
        while (at + 19 <= entries.Length)
        {
            int reclen = BinaryPrimitives.ReadUInt16LittleEndian(entries[(at + 16)..]);
            if (reclen == 0) break;
            ulong ino = BinaryPrimitives.ReadUInt64LittleEndian(entries[at..]);
            BinaryPrimitives.WriteUInt64LittleEndian(entries[at..], GuestInode(hostDev, ino));
            at += reclen;
        }
    }
}
