using Remus.Sandbox.Kernel.Locks;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>An open file as the program sees it (Linux's struct file). Results are byte counts or negated errnos.</summary>
internal abstract class FileDescription
{
    public const int O_NONBLOCK = 0x800;

    /// <summary>O_* flags the file was opened with (for F_GETFL); F_SETFL changes the settable ones.</summary>
    public int Flags { get; set; }

    /// <summary>O_NONBLOCK: a call that would wait fails with EAGAIN instead.</summary>
    public bool NonBlocking => (Flags & O_NONBLOCK) != 0;

    /// <summary>
    /// Reads what is there. Files with a <see cref="Queue"/> never wait here: they return -EAGAIN, and the kernel
    /// waits on the queue (unless O_NONBLOCK) and asks again.
    /// </summary>
    public virtual long Read(Span<byte> buffer, CancellationToken interrupt) => -Errno.EBADF;

    /// <summary>Writes what fits; files with a <see cref="Queue"/> return -EAGAIN (or a short count) when full.</summary>
    public virtual long Write(ReadOnlySpan<byte> data) => -Errno.EBADF;

    /// <summary>Goes on with a write that had to wait for room (a pipe does not merge into its last page then).</summary>
    public virtual long WriteContinued(ReadOnlySpan<byte> data) => Write(data);

    public virtual long PRead(Span<byte> buffer, long offset) => -Errno.ESPIPE;
    public virtual long Seek(long offset, int whence) => -Errno.ESPIPE;
    public virtual long Stat(Span<byte> statbuf) => -Errno.EBADF;
    public virtual long GetDents64(Span<byte> buffer) => -Errno.ENOTDIR;
    public virtual bool IsTerminal => false;

    /// <summary>The host file behind it, for record locks and flock (null: none; such files cannot be locked).</summary>
    public virtual FileIdentity? Identity => null;

    /// <summary>The host path behind it, when there is one (for *at() relative lookups).</summary>
    public virtual string? HostPath => null;

    /// <summary>
    /// The events the file is ready for now (Linux's f_op->poll). A file without a poll operation (a regular file,
    /// a device like /dev/null) is always ready to read and write.
    /// </summary>
    public virtual PollEvents Readiness() => PollEvents.Always;

    /// <summary>
    /// Where calls wait for this file's readiness to change; null for files whose readiness never changes (epoll
    /// refuses those with EPERM, as Linux refuses files without a poll operation).
    /// </summary>
    public virtual WaitQueue? Queue => null;

    /// <summary>
    /// Whether <see cref="Read"/> and <see cref="Write"/> do their own waiting (the console: a read blocks on the host
    /// until input or the interrupt), so the kernel calls them directly although the file has a <see cref="Queue"/>
    /// for poll and epoll.
    /// </summary>
    public virtual bool WaitsInReadWrite => false;

    /// <summary>
    /// When (guest monotonic ns) this file's readiness changes by itself, without anyone notifying its queue (a
    /// timer expiring); long.MaxValue when never. Waiters wake up then to look again.
    /// </summary>
    public virtual long NextEventNs => long.MaxValue;

    /// <summary>The epoll interest items watching this file (removed when the file goes, as Linux's eventpoll_release).</summary>
    internal List<EpollItem>? Watchers { get; set; }

    /// <summary>The lock table holding OFD locks or a flock of this description: they go when it is closed.</summary>
    internal LockTable? HeldLocks { get; set; }

    /// <summary>Called by the fd table when the last descriptor referring to it is closed.</summary>
    public void Close()
    {
        if (HeldLocks is { } locks)
        {
            HeldLocks = null;
            locks.Released(this);
        }
        if (Watchers is { } ws)
        {
            foreach (var item in ws.ToArray()) item.Owner.Forget(item);
            Watchers = null;
        }
        Release();
    }

    /// <summary>Frees what the file holds (host fds, its end of a pipe).</summary>
    public virtual void Release() { }
}
