using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// How checkpoints carry the readiness files (kernel state version 3): pipes with every buffered byte, slot by slot
/// (so the pipe holds and merges exactly as before), eventfd counters, timerfd expiry/interval/unread expirations
/// (the expiry on the guest's monotonic clock, which checkpoints carry: the remaining time goes on after restore),
/// the memory devices, open /proc files (text and offset); then every epoll set's interest list (events with their
/// EPOLLET/EPOLLONESHOT bits, a fired one-shot disarmed, data) and ready list in order; then the progress of a
/// blocking write interrupted after part of its data went in.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const byte KindPipe = 2, KindEventFd = 3, KindTimerFd = 4, KindEpoll = 5, KindDevice = 6, KindProc = 7;

    /// <summary>Writes a readiness file of <paramref name="descriptions"/> (kind byte first); false when <paramref name="f"/> is none.</summary>
    private static bool SaveFileKind(BinaryWriter w, FileDescription f, List<FileDescription> descriptions)
    {
        switch (f)
        {
            case PipeFile p:
                w.Write(KindPipe);
                w.Write(p.IsWriteEnd);
                // The pipe is written with the first of its ends; the other end names that one.
                int first = descriptions.FindIndex(d => d is PipeFile q && q.Pipe == p.Pipe);
                w.Write(first);
                if (descriptions[first] != f) return true;
                w.Write(p.Pipe.MaxSlots);
                w.Write(p.Pipe.Slots.Count);
                foreach (var s in p.Pipe.Slots)
                {
                    w.Write(s.Offset);
                    w.Write(s.Packet);
                    w.Write(s.Length);
                    w.Write(s.Page, s.Offset, s.Length);
                }
                return true;
            case EventFdFile e:
                w.Write(KindEventFd);
                w.Write(e.Count);
                w.Write(e.Semaphore);
                return true;
            case TimerFdFile t:
                w.Write(KindTimerFd);
                w.Write(t.ClockId);
                w.Write(t.ExpiryNs);
                w.Write(t.IntervalNs);
                w.Write(t.Ticks);
                w.Write(t.Expired);
                return true;
            case EpollFile:
                w.Write(KindEpoll); // its lists follow the fd table (they name other files)
                return true;
            case DeviceFile d:
                w.Write(KindDevice);
                w.Write(d.Path);
                return true;
            case ProcFile pf:
                w.Write(KindProc);
                w.Write(pf.Path);
                w.Write(pf.Text.Length);
                w.Write(pf.Text);
                w.Write(pf.Position);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Reads a readiness file of kind <paramref name="kind"/>; null when the kind is unknown.</summary>
    private FileDescription? LoadFileKind(byte kind, BinaryReader r, int flags, List<FileDescription> descriptions)
    {
        switch (kind)
        {
            case KindPipe:
            {
                bool writeEnd = r.ReadBoolean();
                int first = r.ReadInt32();
                Pipe pipe;
                if (first == descriptions.Count)
                {
                    pipe = new Pipe { MaxSlots = r.ReadInt32() };
                    if (pipe.MaxSlots is < 1 or > 256) throw Corrupt("pipe size");
                    int n = r.ReadInt32();
                    for (int i = 0; i < n; i++)
                    {
                        int offset = r.ReadInt32();
                        bool packet = r.ReadBoolean();
                        int length = r.ReadInt32();
                        if (length is < 0 or > Pipe.PageSize) throw Corrupt("pipe slot");
                        try { pipe.AddSlot(r.ReadBytes(length), offset, packet); }
                        catch (InvalidDataException) { throw Corrupt("pipe slot"); }
                    }
                }
                else if (first >= 0 && first < descriptions.Count && descriptions[first] is PipeFile other) pipe = other.Pipe;
                else throw Corrupt("pipe end");
                return new PipeFile(pipe, writeEnd, flags);
            }
            case KindEventFd:
                return new EventFdFile(r.ReadUInt64(), r.ReadBoolean()) { Flags = flags };
            case KindTimerFd:
                return new TimerFdFile(Clock, r.ReadInt32()) { Flags = flags, ExpiryNs = r.ReadInt64(), IntervalNs = r.ReadInt64(), Ticks = r.ReadUInt64(), Expired = r.ReadBoolean() };
            case KindEpoll:
                return new EpollFile(Clock) { Flags = flags };
            case KindDevice:
            {
                string path = r.ReadString();
                if (!DeviceFile.Minors.ContainsKey(path)) throw Corrupt("device");
                return new DeviceFile(path) { Flags = flags };
            }
            case KindProc:
            {
                string path = r.ReadString();
                int n = r.ReadInt32();
                if (n < 0) throw Corrupt("proc file");
                byte[] text = r.ReadBytes(n);
                return new ProcFile(path, text) { Flags = flags, Position = r.ReadInt64() };
            }
            default:
                return null;
        }
    }

    private static SandboxException Corrupt(string what) => new($"corrupt kernel state in the checkpoint ({what})");

    /// <summary>After the fd table: the epoll sets' lists, then an interrupted write's progress.</summary>
    private void SaveReadinessState(BinaryWriter w, List<FileDescription> descriptions, Dictionary<FileDescription, int> indexOf)
    {
        foreach (var f in descriptions)
        {
            if (f is not EpollFile ep) continue;
            w.Write(ep.Items.Count);
            foreach (var item in ep.Items)
            {
                int index = indexOf.GetValueOrDefault(item.File, -1);
                if (index < 0) throw new InvalidOperationException("an epoll set watches a file that is not open");
                w.Write(index);
                w.Write(item.Fd);
                w.Write(item.Events);
                w.Write(item.Data);
            }
            w.Write(ep.ReadyList.Count);
            foreach (var item in ep.ReadyList) w.Write(ep.IndexOf(item));
        }
        w.Write(_interruptedTransfer.HasValue);
        if (_interruptedTransfer is { } t) { w.Write(t.Rip); w.Write(t.Done); }
    }

    private void LoadReadinessState(BinaryReader r, List<FileDescription> descriptions)
    {
        foreach (var f in descriptions)
        {
            if (f is not EpollFile ep) continue;
            int n = r.ReadInt32();
            if (n < 0) throw Corrupt("epoll set");
            for (int i = 0; i < n; i++)
            {
                int index = r.ReadInt32(), fd = r.ReadInt32();
                uint events = r.ReadUInt32();
                ulong data = r.ReadUInt64();
                if (index < 0 || index >= descriptions.Count || descriptions[index].Queue == null || descriptions[index] == ep)
                    throw Corrupt("epoll item");
                ep.Restore(descriptions[index], fd, events, data);
            }
            int ready = r.ReadInt32();
            if (ready < 0 || ready > n) throw Corrupt("epoll ready list");
            for (int i = 0; i < ready; i++)
            {
                int at = r.ReadInt32();
                if (at < 0 || at >= n) throw Corrupt("epoll ready list");
                try { ep.RestoreReady(ep.Items[at]); }
                catch (InvalidDataException) { throw Corrupt("epoll ready list"); }
            }
        }
        _interruptedTransfer = r.ReadBoolean() ? (r.ReadUInt64(), r.ReadInt64()) : null;
    }
}
