using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel.Locks;

/// <summary>The lock types of struct flock's l_type (and of flock's LOCK_SH / LOCK_EX / LOCK_UN).</summary>
internal static class LockType
{
    public const short Read = 0, Write = 1, Unlock = 2;

    public static bool Conflict(short a, short b) => a == Write || b == Write;
}

/// <summary>
/// A byte range [Start, End] locked (Linux's file_lock on an inode's flc_posix list; End = long.MaxValue: to the end
/// of the file, however far it grows). A POSIX lock (<see cref="Ofd"/> false) is owned by the process — one process,
/// so all of them have the same owner — and <see cref="File"/> is only the description it was set through; an OFD lock is
/// owned by <see cref="File"/>, its open file description.
/// </summary>
internal readonly record struct RecordLock(FileDescription File, bool Ofd, short Type, long Start, long End)
{
    public bool SameOwner(FileDescription file, bool ofd) => Ofd == ofd && (!ofd || ReferenceEquals(File, file));

    public bool Overlaps(long start, long end) => Start <= end && start <= End;
}

/// <summary>A flock(2) lock: whole file, owned by the open file description <see cref="File"/>.</summary>
internal readonly record struct FlockLock(FileDescription File, short Type);

/// <summary>The locks on one file: byte-range locks grouped by owner (each group sorted by start), and flocks.</summary>
internal sealed class FileLocks
{
    public List<RecordLock> Records { get; } = [];
    public List<FlockLock> Flocks { get; } = [];
    public bool IsEmpty => Records.Count == 0 && Flocks.Count == 0;
}
