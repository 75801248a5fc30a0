namespace Remus.Sandbox.Kernel.Files;

/// <summary>An open file as the program sees it (Linux's struct file). Results are byte counts or negated errnos.</summary>
internal abstract class FileDescription
{
    /// <summary>O_* flags the file was opened with (for F_GETFL).</summary>
    public int Flags { get; init; }

    public virtual long Read(Span<byte> buffer, CancellationToken interrupt) => -Errno.EBADF;
    public virtual long Write(ReadOnlySpan<byte> data) => -Errno.EBADF;
    public virtual long PRead(Span<byte> buffer, long offset) => -Errno.ESPIPE;
    public virtual long Seek(long offset, int whence) => -Errno.ESPIPE;
    public virtual long Stat(Span<byte> statbuf) => -Errno.EBADF;
    public virtual long GetDents64(Span<byte> buffer) => -Errno.ENOTDIR;
    public virtual bool IsTerminal => false;

    /// <summary>The host path behind it, when there is one (for *at() relative lookups).</summary>
    public virtual string? HostPath => null;

    /// <summary>Called when the last descriptor referring to it is closed.</summary>
    public virtual void Release() { }
}
