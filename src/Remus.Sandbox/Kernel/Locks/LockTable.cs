using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Locks;

/// <summary>
/// The record locks and flocks of the domain's files, keyed by the host file behind a description
/// (<see cref="FileDescription.Identity"/>; a file without one — a pipe, a socket — is its own key, as its inode
/// is its own on Linux). Semantics are Linux's fs/locks.c for one process:
/// <list type="bullet">
/// <item>POSIX locks (F_SETLK) are all the process's: they never conflict with each other; setting one merges it with
/// the process's adjacent or overlapping locks of the same type and splits those of the other type.</item>
/// <item>OFD locks (F_OFD_SETLK) are owned by their open file description: they conflict with other descriptions' OFD
/// locks and with the process's POSIX locks, and merge and split with their own description's.</item>
/// <item>flock is a separate space: whole file, per description; a conversion drops the old lock first (not atomic, as
/// Linux), and only conflicts block.</item>
/// </list>
/// Every change that removes or shrinks a lock notifies <see cref="Queue"/>, where blocked F_SETLKW and flock calls wait
/// to try again. Guarded by the kernel lock, as everything in the fd table.
/// </summary>
internal sealed class LockTable
{
    private readonly Dictionary<object, FileLocks> _files = [];

    /// <summary>Where blocked lock calls wait; notified when locks go or shrink.</summary>
    public WaitQueue Queue { get; } = new();

    public static object KeyOf(FileDescription f) => (object?)f.Identity ?? f;

    /// <summary>The files with locks (for checkpoints), in no particular order.</summary>
    public IEnumerable<FileLocks> Files => _files.Values;

    public bool IsEmpty => _files.Count == 0;

    /// <summary>
    /// F_GETLK / F_OFD_GETLK: the first lock (in list order, as posix_test_lock) that would conflict with a lock of
    /// <paramref name="type"/> on [start, end] set through <paramref name="f"/>; null when none would.
    /// </summary>
    public RecordLock? Test(FileDescription f, bool ofd, short type, long start, long end)
    {
        if (!_files.TryGetValue(KeyOf(f), out var locks)) return null;
        foreach (var r in locks.Records)
            if (!r.SameOwner(f, ofd) && r.Overlaps(start, end) && LockType.Conflict(r.Type, type)) return r;
        return null;
    }

    /// <summary>
    /// F_SETLK / F_OFD_SETLK: sets (or with <see cref="LockType.Unlock"/> removes) the owner's lock on [start, end].
    /// 0, or -EAGAIN when another owner's lock conflicts (nothing changes then).
    /// </summary>
    public long Set(FileDescription f, bool ofd, short type, long start, long end)
    {
        object key = KeyOf(f);
        if (!_files.TryGetValue(key, out var locks))
        {
            if (type == LockType.Unlock) return 0;
            _files[key] = locks = new FileLocks();
        }
        var records = locks.Records;
        if (type != LockType.Unlock)
            foreach (var r in records)
                if (!r.SameOwner(f, ofd) && r.Overlaps(start, end) && LockType.Conflict(r.Type, type))
                {
                    if (locks.IsEmpty) _files.Remove(key);
                    return -Errno.EAGAIN;
                }

        // The owner's locks, rebuilt: those the request absorbs (same type, overlapping or adjacent) widen it; those
        // of another type it overlaps keep only their parts outside it; an unlock keeps only the parts outside.
        var mine = new List<RecordLock>();
        int at = -1;
        bool shrunk = false;
        long s = start, e = end;
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            if (!r.SameOwner(f, ofd)) continue;
            if (at < 0) at = i;
            records.RemoveAt(i--);
            if (type != LockType.Unlock && r.Type == type && r.End >= s - 1 && r.Start - 1 <= e)
            {
                s = Math.Min(s, r.Start);
                e = Math.Max(e, r.End);
                continue;
            }
            if (!r.Overlaps(start, end))
            {
                mine.Add(r);
                continue;
            }
            shrunk = true;
            if (r.Start < start) mine.Add(r with { End = start - 1 });
            if (r.End > end) mine.Add(r with { Start = end + 1 });
        }
        if (type != LockType.Unlock) mine.Add(new RecordLock(f, ofd, type, s, e));
        mine.Sort((a, b) => a.Start.CompareTo(b.Start));
        records.InsertRange(at < 0 ? records.Count : at, mine);
        if (ofd && type != LockType.Unlock) f.HeldLocks = this;
        if (locks.IsEmpty) _files.Remove(key);
        if (shrunk) Queue.Notify(PollEvents.None);
        return 0;
    }

    /// <summary>
    /// flock: takes <paramref name="type"/> (or drops with <see cref="LockType.Unlock"/>) for the description. A
    /// conversion drops the description's old lock first. 0, or -EAGAIN when another description's lock conflicts.
    /// </summary>
    public long Flock(FileDescription f, short type)
    {
        object key = KeyOf(f);
        if (!_files.TryGetValue(key, out var locks))
        {
            if (type == LockType.Unlock) return 0;
            _files[key] = locks = new FileLocks();
        }
        var flocks = locks.Flocks;
        long result = 0;
        bool dropped = false;
        int mine = flocks.FindIndex(l => ReferenceEquals(l.File, f));
        if (mine >= 0)
        {
            if (flocks[mine].Type == type) return 0;
            flocks.RemoveAt(mine);
            dropped = true;
        }
        if (type != LockType.Unlock)
        {
            foreach (var l in flocks)
                if (!ReferenceEquals(l.File, f) && LockType.Conflict(l.Type, type))
                {
                    result = -Errno.EAGAIN;
                    break;
                }
            if (result == 0)
            {
                flocks.Add(new FlockLock(f, type));
                f.HeldLocks = this;
            }
        }
        if (locks.IsEmpty) _files.Remove(key);
        if (dropped) Queue.Notify(PollEvents.None);
        return result;
    }

    /// <summary>A descriptor of <paramref name="f"/> was closed: the process's POSIX locks on its file go (all of them,
    /// whichever description set them, as Linux's filp_flush).</summary>
    public void ClosedFd(FileDescription f)
    {
        if (_files.Count == 0) return;
        object key = KeyOf(f);
        if (!_files.TryGetValue(key, out var locks)) return;
        if (locks.Records.RemoveAll(r => !r.Ofd) == 0) return;
        if (locks.IsEmpty) _files.Remove(key);
        Queue.Notify(PollEvents.None);
    }

    /// <summary>The description <paramref name="f"/> was released: its OFD locks and its flock go.</summary>
    public void Released(FileDescription f)
    {
        object key = KeyOf(f);
        if (!_files.TryGetValue(key, out var locks)) return;
        int n = locks.Records.RemoveAll(r => r.Ofd && ReferenceEquals(r.File, f))
            + locks.Flocks.RemoveAll(l => ReferenceEquals(l.File, f));
        if (locks.IsEmpty) _files.Remove(key);
        if (n > 0) Queue.Notify(PollEvents.None);
    }

    /// <summary>Forgets every lock (before a checkpoint's locks are loaded).</summary>
    public void Clear()
    {
        _files.Clear();
        Queue.Notify(PollEvents.None);
    }

    /// <summary>Puts back a lock from a checkpoint, after those already put back on the same file.</summary>
    public void Restore(RecordLock r)
    {
        Of(r.File).Records.Add(r);
        if (r.Ofd) r.File.HeldLocks = this;
    }

    /// <summary>Puts back a flock from a checkpoint.</summary>
    public void Restore(FlockLock l)
    {
        Of(l.File).Flocks.Add(l);
        l.File.HeldLocks = this;
    }

    private FileLocks Of(FileDescription f)
    {
        object key = KeyOf(f);
        if (!_files.TryGetValue(key, out var locks)) _files[key] = locks = new FileLocks();
        return locks;
    }
}
