using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel.Volumes;

/// <summary>
/// An open file or directory of a volume: a host fd opened through the volume's root, and the file's canonical path
/// relative to that root, kept current when it or a directory above it is renamed (or when it goes to .remus-orphans
/// because the program unlinked it while open). Every change goes to the host at once and is then told to the
/// journal (<see cref="VolumeTable.Journal"/>) with that path. O_APPEND is done here (the host fd is opened without
/// it) so that the offset a write really went to is known.
/// </summary>
internal sealed class VolumeFile : FileDescription
{
    private const int O_APPEND = 0x400, O_ACCMODE = 3;
    private int _fd;

    public VolumeFile(VolumeTable table, int volume, int hostFd, string path, bool isDirectory)
    {
        Table = table;
        Volume = volume;
        _fd = hostFd;
        Path = path;
        IsDirectory = isDirectory;
        table.Opened(this);
    }

    public VolumeTable Table { get; }

    /// <summary>The volume's index in <see cref="DomainSpec.Volumes"/>.</summary>
    public int Volume { get; }

    /// <summary>Canonical path relative to the volume's root ("" is the root); under .remus-orphans once unlinked.</summary>
    public string Path { get; internal set; }

    public bool IsDirectory { get; }

    /// <summary>The host fd (for fsync, fstatfs, mmap's copy).</summary>
    internal int HostFd => _fd;

    /// <summary>The guest path (the base of relative *at calls with this file as dirfd).</summary>
    public override string HostPath => Table.GuestPathOf(Volume, Path);

    /// <summary>The current offset (read back for checkpoints).</summary>
    public long Position => HostFiles.Seek(_fd, 0, 1);

    private bool Appending => (Flags & O_APPEND) != 0;

    public override long Read(Span<byte> buffer, CancellationToken interrupt) =>
        IsDirectory ? -Errno.EISDIR : HostFiles.Read(_fd, buffer);

    public override long PRead(Span<byte> buffer, long offset) =>
        IsDirectory ? -Errno.EISDIR : offset < 0 ? -Errno.EINVAL : HostFiles.PRead(_fd, buffer, offset);

    public override long Write(ReadOnlySpan<byte> data)
    {
        if (IsDirectory || (Flags & O_ACCMODE) == 0) return -Errno.EBADF;
        long n, offset;
        if (Appending)
        {
            offset = EndOfFile();
            if (offset < 0) return offset;
            n = HostDirectories.PWrite(_fd, data, offset);
            if (n > 0) HostFiles.Seek(_fd, offset + n, 0);
        }
        else
        {
            offset = HostFiles.Seek(_fd, 0, 1);
            if (offset < 0) return offset;
            n = HostDirectories.Write(_fd, data);
        }
        if (n > 0) Table.Journal?.Wrote(Volume, Path, offset, data[..(int)n]);
        return n;
    }

    /// <summary>pwrite: at <paramref name="offset"/>, the file offset unchanged (with O_APPEND, at the end, as Linux does).</summary>
    public long PWrite(ReadOnlySpan<byte> data, long offset)
    {
        if (IsDirectory || (Flags & O_ACCMODE) == 0) return -Errno.EBADF;
        if (offset < 0) return -Errno.EINVAL;
        if (Appending) offset = EndOfFile();
        if (offset < 0) return offset;
        long n = HostDirectories.PWrite(_fd, data, offset);
        if (n > 0) Table.Journal?.Wrote(Volume, Path, offset, data[..(int)n]);
        return n;
    }

    private long EndOfFile()
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        long r = HostFiles.Stat(_fd, st);
        return r < 0 ? r : BinaryPrimitives.ReadInt64LittleEndian(st[48..]);
    }

    public long Truncate(long length)
    {
        if (IsDirectory) return -Errno.EINVAL;
        if ((Flags & O_ACCMODE) == 0) return -Errno.EINVAL; // Linux: EINVAL for a file not open for writing
        if (length < 0) return -Errno.EINVAL;
        long r = HostDirectories.Truncate(_fd, length);
        if (r == 0) Table.Journal?.Truncated(Volume, Path, length);
        return r;
    }

    public long Allocate(int mode, long offset, long length)
    {
        if (offset < 0 || length <= 0) return -Errno.EINVAL;
        if ((Flags & O_ACCMODE) == 0) return -Errno.EBADF;
        if (IsDirectory) return -Errno.EISDIR;
        if (mode != 0) return -Errno.EOPNOTSUPP;
        long r = HostDirectories.Fallocate(_fd, 0, offset, length);
        if (r == 0) Table.Journal?.Allocated(Volume, Path, offset, length);
        return r;
    }

    public long Sync(bool dataOnly) => dataOnly ? HostDirectories.Fdatasync(_fd) : HostDirectories.Fsync(_fd);

    public long ChangeMode(int mode)
    {
        long r = HostDirectories.Fchmod(_fd, mode & 0xFFF);
        if (r == 0) Table.Journal?.ChangedMode(Volume, Path, (uint)(mode & 0xFFF));
        return r;
    }

    /// <summary>futimens: times as utimensat takes them; the resulting times are journaled.</summary>
    public long ChangeTimes(ReadOnlySpan<long> times)
    {
        long r = HostDirectories.Futimens(_fd, times);
        if (r != 0) return r;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        if (HostFiles.Stat(_fd, st) == 0) Table.Journal?.ChangedTimes(Volume, Path, VolumeTable.StatTimeNs(st, 72), VolumeTable.StatTimeNs(st, 88));
        return 0;
    }

    public long StatFs(Span<byte> buf) => HostDirectories.Fstatfs(_fd, buf);

    public override long Seek(long offset, int whence) =>
        whence is < 0 or > 4 ? -Errno.EINVAL : HostFiles.Seek(_fd, offset, whence);

    public override long Stat(Span<byte> statbuf)
    {
        long r = HostFiles.Stat(_fd, statbuf);
        if (r == 0) Table.Virtualize(Volume, statbuf);
        if (r == 0 && VolumeTable.IsHidden(Path))
        {
            // Unlinked by the program: its name in .remus-orphans is not one the program made.
            ulong links = BinaryPrimitives.ReadUInt64LittleEndian(statbuf[16..]);
            BinaryPrimitives.WriteUInt64LittleEndian(statbuf[16..], IsDirectory || links == 0 ? 0 : links - 1);
        }
        return r;
    }

    public override FileIdentity? Identity => HostIdentity();

    /// <summary>The host device and inode of the open file (what locks attach to, and what the guest's numbers map from).</summary>
    public FileIdentity? HostIdentity()
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        if (_fd < 0 || HostFiles.Stat(_fd, st) < 0) return null;
        return new FileIdentity(BinaryPrimitives.ReadUInt64LittleEndian(st), BinaryPrimitives.ReadUInt64LittleEndian(st[8..]));
    }

    public override long GetDents64(Span<byte> buffer)
    {
        if (!IsDirectory) return -Errno.ENOTDIR;
        if (VolumeTable.IsHidden(Path)) return -Errno.ENOENT; // a removed directory, as Linux's
        while (true)
        {
            long n = HostFiles.GetDents64(_fd, buffer);
            if (n <= 0) return n;
            // The root: .remus-orphans is the VMM's, not the program's.
            int kept = Path.Length != 0 ? (int)n : VolumeTable.DropEntry(buffer[..(int)n], VolumeTable.OrphansName);
            if (kept == 0) continue;
            if (HostIdentity() is { } id) Table.VirtualizeEntries(id.Device, buffer[..kept]);
            return kept;
        }
    }

    public override void Release()
    {
        if (_fd < 0) return;
        HostFiles.Close(_fd);
        _fd = -1;
        Table.Closed(this);
    }
}
