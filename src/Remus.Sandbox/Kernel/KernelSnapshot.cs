using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The kernel's objects as a checkpoint carries them (KERNEL_STATE): the clock, the address-space bookkeeping,
/// signal state, open files (console streams, and host files by path and offset, reopened on restore), and the
/// deadline of an interrupted timed wait (sleep, futex). Shared open files (dup) stay shared. Versioned; a newer version is refused, not guessed.
/// Version 2 adds the CPU time used so far and the resource limits; version 1 (which had neither) is still read.
/// Version 3 adds pipes, eventfd, timerfd, epoll, devices and /proc files (ReadinessSnapshot.cs), then signal
/// delivery's state (Kernel/Signals/SignalsSnapshot.cs): queued siginfo, timers, restart block. Version 4 adds the
/// threads (Kernel/Tasks/TasksSnapshot.cs), then the address space's model and layout, each mapping's flags and the
/// root page table of a paged address space (the other tables are guest pages; an older image is an identity-model one),
/// then the process attributes (RuntimeSurfaceSnapshot.cs: prctl). Version 5 adds sockets (SocketsSnapshot.cs): before the
/// open files, the TCP/IP stack's state (NetStack.Save) and every AF_UNIX socket with its buffered bytes, peer, accept
/// queue, name and options, and the names taken; then socket files among the open files (AF_INET ones name their
/// socket by its id in the stack); versions 1 to 4 are still read. Version 6 adds volume files among the open files
/// (Kernel/Volumes/VolumesSnapshot.cs: volume, path in it, offset), then at the end the volumes' own state and the
/// record locks and flocks (Kernel/Locks/LocksSnapshot.cs). Version 7 has the image's segments among the mappings
/// (MapFlags.Image, each with its own protection); before, the image was read-write-execute up to the heap, and an
/// older state restores it so.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const uint SnapshotMagic = 0x3154534B; // "KST1"
    private const int SnapshotVersion = 7;

    /// <summary>The size of the last state saved: the next one's buffer starts that big instead of doubling up to it.</summary>
    private int _lastStateSize = 4096;

    private MemoryStream? _saveStream; // SaveStateKept's buffer and writer, kept from save to save (issue 14)
    private BinaryWriter? _saveWriter;

    public byte[] SaveState() => SaveStateKept().ToArray();

    /// <summary><see cref="SaveState"/>'s bytes in a buffer the kernel keeps, valid until the next save (a checkpoint takes one every epoch).</summary>
    public ReadOnlySpan<byte> SaveStateKept()
    {
        var ms = _saveStream ??= new MemoryStream(_lastStateSize + 4096);
        ms.SetLength(0);
        var w = _saveWriter ??= new BinaryWriter(ms);
        w.Write(SnapshotMagic);
        w.Write(SnapshotVersion);
        w.Write(Clock.MonotonicNs);
        w.Write(GuestClock.HostMonotonicNs - _startNs);
        w.Write(CpuNs);

        w.Write(Mm.ImageStart);
        w.Write(Mm.BrkStart);
        w.Write(Mm.Brk);
        w.Write(Mm.Mappings.Count);
        foreach (var m in Mm.Mappings) { w.Write(m.Start); w.Write(m.End); w.Write(m.Prot); }

        w.Write(Signals.Actions);
        SaveSignalsV2(w);

        var descriptions = new List<FileDescription>();
        // Index by reference: a list search per fd made a save quadratic in open files (1000 sockets: milliseconds in
        // every checkpoint's pause).
        var indexOf = new Dictionary<FileDescription, int>(ReferenceEqualityComparer.Instance);
        var fds = Fds.All.ToList();
        foreach (var (_, f, _) in fds) if (indexOf.TryAdd(f, descriptions.Count)) descriptions.Add(f);
        SaveSockets(w, descriptions);
        w.Write(descriptions.Count);
        foreach (var f in descriptions)
        {
            w.Write(f.Flags);
            switch (f)
            {
                case ConsoleFile c:
                    w.Write((byte)0);
                    w.Write(c.Stream);
                    break;
                case HostFile h:
                    w.Write((byte)1);
                    w.Write(h.HostPath);
                    w.Write(h.IsDirectory);
                    w.Write(h.Position);
                    break;
                default:
                    if (!SaveVolumeFile(w, f) && !SaveFileKind(w, f, descriptions) && !SaveSocketFile(w, f))
                        throw new InvalidOperationException($"cannot checkpoint open file {f.GetType().Name}");
                    break;
            }
        }
        w.Write(fds.Count);
        foreach (var (fd, f, cloexec) in fds) { w.Write(fd); w.Write(indexOf[f]); w.Write(cloexec); }

        w.Write(_interruptedWait.HasValue);
        if (_interruptedWait is { } s) { w.Write(s.Rip); w.Write(s.DeadlineNs); }
        Limits.Save(w);
        SaveReadinessState(w, descriptions, indexOf);
        SaveSignals(w);
        SaveTasks(w);
        SaveAddressSpace(w);
        SaveRuntimeSurface(w);
        SaveVolumes(w);
        SaveLocks(w, indexOf);
        _savedUnix = null;
        w.Flush();
        _lastStateSize = (int)ms.Length;
        var saved = ms.GetBuffer().AsSpan(0, _lastStateSize);
        if (ms.Capacity > 1 << 20 && ms.Capacity > 4 * _lastStateSize) (_saveStream, _saveWriter) = (null, null); // a rare big one is not kept
        return saved;
    }

    /// <summary>Replaces this (fresh) kernel's objects with those of a checkpoint.</summary>
    public void LoadState(ReadOnlySpan<byte> state)
    {
        using var r = new SnapshotReader(state.ToArray());
        try
        {
            if (r.ReadUInt32() != SnapshotMagic) throw new SandboxException("corrupt kernel state in the checkpoint");
            int version = r.ReadInt32();
            if (version is < 1 or > SnapshotVersion)
                throw new SandboxException($"unsupported kernel state version {version} (this build reads 1 to {SnapshotVersion})");
            Clock.ContinueFrom(r.ReadInt64());
            long uptime = r.ReadInt64();
            _startNs = GuestClock.HostMonotonicNs - uptime;
            // The CPU clocks go on from what the program had used (version 1 reported the uptime there).
            Clock.CpuOffsetNs = (version >= 2 ? r.ReadInt64() : uptime) - (Vcpu?.CpuTimeNs ?? 0);

            ulong imageStart = r.ReadUInt64(), brkStart = r.ReadUInt64(), brk = r.ReadUInt64();
            int n = r.ReadInt32();
            var maps = new List<Mapping>(n);
            for (int i = 0; i < n; i++) maps.Add(new Mapping(r.ReadUInt64(), r.ReadUInt64(), r.ReadInt32()));

            r.ReadBytes(Signals.Actions.Length).CopyTo(Signals.Actions, 0);
            LoadSignalsV2(r);

            if (version >= 5) LoadSockets(r);
            if (version >= 6) Volumes.ForgetInodes(); // the open volume files below bring their inode numbers
            int nd = r.ReadInt32();
            var descriptions = new List<FileDescription>(nd);
            try
            {
                for (int i = 0; i < nd; i++)
                {
                    int flags = r.ReadInt32();
                    byte kind = r.ReadByte();
                    switch (kind)
                    {
                        case 0:
                            descriptions.Add(new ConsoleFile(Console, r.ReadInt32(), Clock) { Flags = flags });
                            break;
                        case 1:
                            descriptions.Add(ReopenHostFile(r.ReadString(), r.ReadBoolean(), r.ReadInt64(), flags));
                            break;
                        default:
                            descriptions.Add(LoadVolumeFile(kind, r, flags) ?? LoadFileKind(kind, r, flags, descriptions) ?? LoadSocketFile(kind, r, flags)
                                ?? throw new SandboxException("corrupt kernel state in the checkpoint (open file kind)"));
                            break;
                    }
                }
            }
            catch
            {
                foreach (var d in descriptions) d.Release();
                throw;
            }
            Fds.CloseAll();
            int nf = r.ReadInt32();
            for (int i = 0; i < nf; i++)
            {
                int fd = r.ReadInt32(), index = r.ReadInt32();
                bool cloexec = r.ReadBoolean();
                if (index < 0 || index >= descriptions.Count || fd < 0 || fd >= FdTable.MaxFds)
                    throw new SandboxException("corrupt kernel state in the checkpoint (fd table)");
                Fds.Set(fd, descriptions[index], cloexec);
            }
            _interruptedWait = r.ReadBoolean() ? (r.ReadUInt64(), r.ReadInt64()) : null;
            if (version >= 2)
            {
                Limits.Load(r);
                ApplyFdLimit();
            }
            if (version >= 3)
            {
                LoadReadinessState(r, descriptions);
                LoadSignals(r);
            }
            if (version >= 4) LoadTasks(r);
            PhaseTrace.Mark("K kernel objects loaded");
            LoadAddressSpace(r, version, imageStart, brkStart, brk, maps);
            PhaseTrace.Mark("K address space restored");
            if (version >= 4) LoadRuntimeSurface(r);
            if (version >= 6)
            {
                LoadVolumes(r);
                LoadLocks(r, descriptions);
            }
        }
        catch (EndOfStreamException)
        {
            throw new SandboxException("truncated kernel state in the checkpoint");
        }
        finally
        {
            _loadedUnix = null;
        }
    }

    private void SaveAddressSpace(BinaryWriter w)
    {
        var layout = Mm.Layout;
        w.Write(layout.Paged);
        w.Write(layout.StackTop);
        w.Write(layout.StackSize);
        w.Write(layout.MmapBase);
        foreach (var m in Mm.Mappings) w.Write((int)m.Flags);
        var root = Mm.Paged ? Mm.Tables!.RootEntries() : [];
        w.Write(root.Count);
        foreach (var (i, e) in root) { w.Write(i); w.Write(e); }
    }

    private void LoadAddressSpace(BinaryReader r, int version, ulong imageStart, ulong brkStart, ulong brk, List<Mapping> maps)
    {
        SavedLayout? layout = null;
        var root = new List<(int, ulong)>();
        if (version >= 4)
        {
            layout = new SavedLayout(r.ReadBoolean(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64());
            for (int i = 0; i < maps.Count; i++) maps[i] = maps[i] with { Flags = (MapFlags)r.ReadInt32() };
            int n = r.ReadInt32();
            if (n is < 0 or > 512) throw new SandboxException("corrupt kernel state in the checkpoint (page tables)");
            for (int i = 0; i < n; i++) root.Add((r.ReadInt32(), r.ReadUInt64()));
        }
        Mm.Restore(imageStart, brkStart, brk, maps, layout, root, imageSegments: version >= 7); // tasks come back fresh: no demand page pending
    }

    private HostFile ReopenHostFile(string path, bool isDirectory, long position, int flags)
    {
        if (Policy.Resolve(path, "/") == null)
            throw new SandboxException($"the checkpoint has {path} open, which this domain's configuration does not expose");
        int fd = HostFiles.OpenRead(path, false);
        if (fd < 0) throw new SandboxException($"cannot reopen {path}, open in the checkpoint: {Libc.ErrnoText((int)-fd)}");
        var f = new HostFile(fd, path, isDirectory) { Flags = flags };
        if (f.Seek(position, 0) < 0)
        {
            f.Release();
            throw new SandboxException($"cannot restore the offset of {path}");
        }
        return f;
    }
}
