using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Volumes;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Volume files in the kernel state (version 6): kind 40, then the volume's index, the file's canonical path in it,
/// whether it is a directory, its offset and the guest inode number the program knows it by (bound to the receiver's
/// inode on reopen: VolumeTable.Inodes.cs). They are reopened by path through the volume's root, which on a
/// receiver is its copy (the staging directory, filled by the replica before the state is loaded). Then the
/// volumes' own state: the umask, the next guest inode number and each volume's next .remus-orphans name.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const byte VolumeFileKind = 40;

    /// <summary>Writes an open volume file (kind byte first) and returns true; false for any other file.</summary>
    private static bool SaveVolumeFile(BinaryWriter w, FileDescription f)
    {
        if (f is not VolumeFile v) return false;
        w.Write(VolumeFileKind);
        w.Write(v.Volume);
        w.Write(v.Path);
        w.Write(v.IsDirectory);
        w.Write((v.Flags & 0x200000) != 0 ? 0L : v.Position); // O_PATH files have no offset
        var id = v.HostIdentity();
        w.Write(id is { } h ? v.Table.GuestInode(h.Device, h.Inode) : 0UL); // the inode number the program knows it by
        return true;
    }

    /// <summary>Reopens a volume file of kind <paramref name="kind"/>; null when the kind is not a volume file's.</summary>
    private FileDescription? LoadVolumeFile(byte kind, BinaryReader r, int flags)
    {
        if (kind != VolumeFileKind) return null;
        int volume = r.ReadInt32();
        string path = r.ReadString();
        bool isDirectory = r.ReadBoolean();
        long position = r.ReadInt64();
        ulong guestIno = r.ReadUInt64();
        if (volume < 0 || volume >= Volumes.Count)
            throw new SandboxException($"the checkpoint has a file open in volume {volume}, and this domain has {Volumes.Count} volumes");
        var f = Volumes.Reopen(volume, path, isDirectory, flags, position);
        if (guestIno != 0 && f is VolumeFile v && v.HostIdentity() is { } h) Volumes.BindInode(h.Device, h.Inode, guestIno);
        return f;
    }

    /// <summary>The volumes' own state (after every open file).</summary>
    private void SaveVolumes(BinaryWriter w)
    {
        w.Write(Volumes.Umask);
        w.Write(Volumes.NextInode);
        w.Write(Volumes.Count);
        for (int i = 0; i < Volumes.Count; i++) w.Write(Volumes[i].NextOrphan);
    }

    private void LoadVolumes(BinaryReader r)
    {
        Volumes.Umask = r.ReadInt32() & 0x1FF;
        Volumes.NextInode = Math.Max(Volumes.NextInode, r.ReadUInt64());
        int n = r.ReadInt32();
        if (n != Volumes.Count)
            throw new SandboxException($"the checkpoint's domain has {n} volumes, this one {Volumes.Count}");
        for (int i = 0; i < n; i++) Volumes[i].NextOrphan = r.ReadInt64();
    }
}
