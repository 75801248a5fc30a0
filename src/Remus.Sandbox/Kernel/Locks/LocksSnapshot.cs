using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Locks;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Record locks and flocks in the kernel state (version 6): each lock with the index of its description (the owner of
/// an OFD lock or a flock; for a POSIX lock, the description it was set through, which names the file), its kind, type
/// and range, files in turn and each file's locks in list order (F_GETLK reports the first conflict in that order).
/// The receiver reopens the descriptions and re-derives each file's identity from them. Blocked F_SETLKW and flock
/// calls are not state: they run again after the load.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const byte PosixLock = 0, OfdLock = 1, FlockEntry = 2;

    private void SaveLocks(BinaryWriter w, Dictionary<FileDescription, int> indexOf)
    {
        var table = Fds.Locks;
        if (table.IsEmpty)
        {
            w.Write(0); // the usual case, at every checkpoint: nothing to gather
            return;
        }
        var entries = new List<(byte Kind, int Index, short Type, long Start, long End)>();
        foreach (var file in table.Files)
        {
            foreach (var r in file.Records)
                if (DescriptionIndex(r.File, r.Ofd, indexOf) is int i)
                    entries.Add((r.Ofd ? OfdLock : PosixLock, i, r.Type, r.Start, r.End));
            foreach (var l in file.Flocks)
                if (indexOf.TryGetValue(l.File, out int i)) entries.Add((FlockEntry, i, l.Type, 0, 0));
        }
        w.Write(entries.Count);
        foreach (var e in entries)
        {
            w.Write(e.Kind);
            w.Write(e.Index);
            w.Write(e.Type);
            w.Write(e.Start);
            w.Write(e.End);
        }
    }

    /// <summary>
    /// The index of the description naming a lock's file. A POSIX lock goes when any fd of its file closes, so its
    /// description is always still open; should it not be, another open description of the same file names it.
    /// </summary>
    private static int? DescriptionIndex(FileDescription f, bool ofd, Dictionary<FileDescription, int> indexOf)
    {
        if (indexOf.TryGetValue(f, out int i)) return i;
        if (ofd) return null;
        object key = LockTable.KeyOf(f);
        foreach (var (d, j) in indexOf)
            if (LockTable.KeyOf(d).Equals(key)) return j;
        return null;
    }

    private void LoadLocks(BinaryReader r, List<FileDescription> descriptions)
    {
        var table = Fds.Locks;
        table.Clear();
        int n = r.ReadInt32();
        if (n < 0) throw new SandboxException("corrupt kernel state in the checkpoint (locks)");
        for (int k = 0; k < n; k++)
        {
            byte kind = r.ReadByte();
            int index = r.ReadInt32();
            short type = r.ReadInt16();
            long start = r.ReadInt64(), end = r.ReadInt64();
            if (index < 0 || index >= descriptions.Count || kind > FlockEntry
                || type is not (LockType.Read or LockType.Write) || (kind != FlockEntry && (start < 0 || end < start)))
                throw new SandboxException("corrupt kernel state in the checkpoint (locks)");
            var f = descriptions[index];
            if (kind == FlockEntry) table.Restore(new FlockLock(f, type));
            else table.Restore(new RecordLock(f, kind == OfdLock, type, start, end));
        }
    }
}
