using System.Buffers.Binary;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>A host file or directory the domain may read, opened read-only on the host.</summary>
internal sealed class HostFile(int hostFd, string path, bool isDirectory) : FileDescription
{
    private int _fd = hostFd;

    public override string HostPath { get; } = path;
    public bool IsDirectory { get; } = isDirectory;

    /// <summary>The current offset (read back for checkpoints).</summary>
    public long Position => HostFiles.Seek(_fd, 0, 1);

    public override long Read(Span<byte> buffer, CancellationToken interrupt) =>
        IsDirectory ? -Errno.EISDIR : HostFiles.Read(_fd, buffer);

    public override long Write(ReadOnlySpan<byte> data) => -Errno.EBADF;

    public override long PRead(Span<byte> buffer, long offset) =>
        IsDirectory ? -Errno.EISDIR : offset < 0 ? -Errno.EINVAL : HostFiles.PRead(_fd, buffer, offset);

    public override long Seek(long offset, int whence) =>
        whence is < 0 or > 4 ? -Errno.EINVAL : HostFiles.Seek(_fd, offset, whence);

    public override long Stat(Span<byte> statbuf) => HostFiles.Stat(_fd, statbuf);

    private FileIdentity? _identity;

    /// <summary>st_dev and st_ino of the host file (read once: locks look it up at every call and at close).</summary>
    public override FileIdentity? Identity => _identity ??= ReadIdentity();

    private FileIdentity? ReadIdentity()
    {
        if (_fd < 0) return null;
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        if (HostFiles.Stat(_fd, st) != 0) return null;
        return new FileIdentity(BinaryPrimitives.ReadUInt64LittleEndian(st), BinaryPrimitives.ReadUInt64LittleEndian(st[8..]));
    }

    public override long GetDents64(Span<byte> buffer) =>
        IsDirectory ? HostFiles.GetDents64(_fd, buffer) : -Errno.ENOTDIR;

    public override void Release()
    {
        if (_fd >= 0) HostFiles.Close(_fd);
        _fd = -1;
    }
}
