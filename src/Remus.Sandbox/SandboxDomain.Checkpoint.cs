using Remus.Sandbox.Platform;

namespace Remus.Sandbox;

/// <summary>
/// The narrow interface the checkpoint engine uses (DESIGN.md §3): pages, the dirty log, and the vCPU and kernel
/// state of a paused domain; and, on the receiving side, a domain built from a checkpoint instead of a program.
/// Guest pages below <see cref="FirstPage"/> belong to the platform and are never transferred.
/// </summary>
public sealed partial class SandboxDomain
{
    /// <summary>Number of guest pages (RAM / 4 KiB).</summary>
    public ulong PageCount => _memory.Size / GuestMemory.PageSize;

    /// <summary>The first page that belongs to the program (everything below is the platform's).</summary>
    public static ulong FirstPage => GuestMemory.UserBase / GuestMemory.PageSize;

    ulong ICheckpointable.ProgramFirstPage => FirstPage;

    /// <summary>Words in a dirty bitmap covering every guest page.</summary>
    public int DirtyBitmapWords => _memory.BitmapWords;

    /// <summary>Page <paramref name="pfn"/> of guest RAM. Consistent only while paused (pre-copy reads it live).</summary>
    public ReadOnlySpan<byte> ReadPage(ulong pfn) => _memory.Page(pfn);

    /// <summary>Page <paramref name="pfn"/> to fill, on a domain being restored (before <see cref="LoadState"/>).</summary>
    public Span<byte> WritablePage(ulong pfn)
    {
        var page = _memory.Page(pfn);
        if (_kernel.Mm.Paged) _kernel.Mm.NoteRestoreWrite(pfn); // the restore releases it if no table holds it
        return page;
    }

    /// <summary>
    /// On a domain being restored, between epochs: the page tables' bookkeeping that a restore needs, done on the pages
    /// written so far (<see cref="Memory.AddressSpace.PrepareRestore"/>), so that <see cref="LoadState(IReadOnlyList{byte[]}, ReadOnlySpan{byte})"/>
    /// costs what changed since, not what is mapped. Not while the program runs.
    /// </summary>
    public void PrepareLoad() => _kernel.Mm.PrepareRestore();

    /// <summary>
    /// Fills whole pages through the memfd (see <see cref="GuestMemory.WritePages"/>), not marked dirty, each noted for
    /// the restore exactly as <see cref="WritablePage"/> notes it.
    /// </summary>
    public void WritePages(ulong firstPfn, ReadOnlySpan<byte> pages)
    {
        _memory.WritePages(firstPfn, pages);
        if (!_kernel.Mm.Paged) return;
        for (ulong pfn = firstPfn, end = firstPfn + (ulong)pages.Length / GuestMemory.PageSize; pfn < end; pfn++)
            _kernel.Mm.NoteRestoreWrite(pfn);
    }

    /// <summary>Starts the dirty log: from here every page written by the program or by the kernel is reported.</summary>
    public void StartDirtyLog()
    {
        OnVcpuThread(v => { v.StartDirtyLog(); return 0; });
        var scratch = new ulong[_memory.BitmapWords];
        _memory.TakeHostDirty(scratch);
    }

    /// <summary>ORs into <paramref name="bitmap"/> every program page that holds data (the rest reads as zeros).</summary>
    public void MarkPopulatedPages(Span<ulong> bitmap) => _memory.MarkPopulated(bitmap, GuestMemory.UserBase);

    /// <summary>
    /// ORs into <paramref name="bitmap"/> the pages written since the last harvest. Safe while running; after the
    /// program exited it adds nothing (check <see cref="State"/>).
    /// </summary>
    public void HarvestDirty(Span<ulong> bitmap)
    {
        lock (_dirtyLogLock)
        {
            if (_vcpuGone) return;
            _vcpu!.HarvestDirty(bitmap);
        }
        _memory.TakeHostDirty(bitmap);
    }

    /// <summary>
    /// Adds to <paramref name="set"/> the pages written since the last harvest, as <see cref="HarvestDirty(Span{ulong})"/>
    /// does, with no walk of the whole bitmap on this side (what the platform's kernel interface costs is its own).
    /// </summary>
    public void HarvestDirty(DirtyPageSet set)
    {
        lock (_dirtyLogLock)
        {
            if (_vcpuGone) return;
            _vcpu!.HarvestDirty(set);
        }
        _memory.TakeHostDirty(set);
    }

    /// <summary>
    /// Stops tracking writes to the pages set in <paramref name="bitmap"/> (replacing the previous set; empty: track
    /// every page again). Every harvest then reports them as written, and a page that leaves the set is reported by
    /// the next harvest once more, so the caller must compare them with what it last sent. For pages written in
    /// most epochs this is much cheaper than a write-protection fault per page per epoch. A hint: a platform may
    /// ignore it (and report written pages only). Safe while running.
    /// </summary>
    public void SetUntracked(ReadOnlySpan<ulong> bitmap)
    {
        lock (_dirtyLogLock)
            if (!_vcpuGone) _vcpu!.SetUntracked(bitmap);
    }

    /// <summary>
    /// The vCPU's registers and FPU/SSE/AVX state, in the platform-neutral form (<see cref="VcpuStateFormat"/>): a
    /// checkpoint taken here restores on either platform. Paused.
    /// </summary>
    public byte[] CaptureVcpuState() => OnVcpuThread(v => VcpuStateFormat.Write(in v.Regs, v.SaveExtendedState()));

    /// <summary>The kernel's objects (files, memory map, signals, clock). Paused.</summary>
    public byte[] CaptureKernelState() => OnVcpuThread(_ => _kernel.SaveState());

    /// <summary>
    /// Builds a domain that will be filled from a checkpoint: guest RAM, an empty kernel and a vCPU, no program
    /// loaded. Write the pages with <see cref="WritablePage"/>, then call <see cref="LoadState"/>; the domain is
    /// then like a paused one, ready for Run().
    /// </summary>
    public static SandboxDomain CreateIncoming(DomainSpec spec, IConsole console) => Build(spec, console, incoming: true);

    /// <summary>
    /// Applies the vCPU and kernel state of a checkpoint (after its pages), whichever platform took it: the registers
    /// but this platform's segment selectors, and the FPU/SSE/AVX state moved into this vCPU's layout (refused in one
    /// line when it uses a component this vCPU lacks).
    /// </summary>
    public void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState) =>
        LoadState([vcpuState.ToArray()], kernelState);

    /// <summary>
    /// Every thread's vCPU state (the first thread's first, then the others in the kernel's order), in the
    /// platform-neutral form. Paused.
    /// </summary>
    public IReadOnlyList<byte[]> CaptureVcpuStates() =>
        OnTaskThreads(CheckpointedRunners(), v => VcpuStateFormat.Write(in v.Regs, v.SaveExtendedState()));

    /// <summary>
    /// Every thread's vCPU state and the kernel state. With one thread, one visit to the vCPU thread takes both (each
    /// visit is a wake-up of that thread and a wait for it: ~0.07 ms of a checkpoint's pause here); with more, the
    /// threads' states as <see cref="CaptureVcpuStates"/>, then the kernel's. Paused.
    /// </summary>
    public (IReadOnlyList<byte[]> Vcpus, byte[] Kernel) CaptureStates()
    {
        var runners = CheckpointedRunners();
        if (runners.Count == 1 && runners[0] == _leaderRunner)
        {
            var (vcpu, kernel) = OnVcpuThread(v => (VcpuStateFormat.Write(in v.Regs, v.SaveExtendedState()), _kernel.SaveState()));
            return ([vcpu], kernel);
        }
        var states = OnTaskThreads(runners, v => VcpuStateFormat.Write(in v.Regs, v.SaveExtendedState()));
        return (states, CaptureKernelState());
    }

    private CapturedStates? _captureInto;   // the capture the leader's thread is asked for (under _lock)
    private CapturedStates? _preCaptured;   // asked for with the pause (PauseForCapture), not yet taken by CaptureStates
    private Action? _captureOnLeader;       // one delegate for every capture, not one per checkpoint
    private bool _captureDone;
    private Exception? _captureError;

    /// <summary>
    /// <see cref="CaptureStates()"/> into <paramref name="into"/>'s buffers. With one thread, one visit to the vCPU
    /// thread takes both states with nothing allocated on the caller's thread (no closure, no result list: the Remus
    /// epoch loop calls this every epoch, issue 14); with more, as <see cref="CaptureStates()"/>. Paused.
    /// </summary>
    public void CaptureStates(CapturedStates into)
    {
        if (TakePreCaptured(into)) return;
        if (!OnlyLeaderCheckpointed())
        {
            var (vcpus, kernel) = CaptureStates();
            into.Set(vcpus, kernel);
            return;
        }
        _captureOnLeader ??= CaptureOnLeader;
        var runner = _leaderRunner;
        lock (_lock)
        {
            // As OnTaskThreads, for the leader alone.
            while (!runner.Parked && !runner.Done && _state != DomainState.Exited)
            {
                if (!_pauseRequested && _state == DomainState.Running) throw new InvalidOperationException("pause the domain first");
                Monitor.Wait(_lock);
            }
            if (runner.Done || _state == DomainState.Exited) throw new InvalidOperationException("the domain has exited");
            _captureInto = into;
            _captureDone = false;
            _captureError = null;
            runner.Work.Enqueue(_captureOnLeader);
            Monitor.PulseAll(_lock);
            while (!_captureDone && !runner.Done && _state != DomainState.Exited) Monitor.Wait(_lock);
            _captureInto = null;
            if (!_captureDone) throw new InvalidOperationException("the domain has exited");
        }
        if (_captureError is { } error)
            throw error is SandboxException or InvalidOperationException ? error : new SandboxException(error.Message, error);
    }

    /// <summary>
    /// Pauses, and has the leader's thread capture both states into <paramref name="into"/> as it parks (its work
    /// queue is served at once there), while the caller harvests and stages pages. <see cref="CaptureStates(CapturedStates)"/>
    /// then only waits for it; if the program has more than one thread by then, that capture is dropped and the
    /// general path runs. Nothing of the guest changes while it is paused, so a capture at the park equals one made
    /// later in the same pause.
    /// </summary>
    public void PauseForCapture(CapturedStates into)
    {
        lock (_lock)
        {
            var runner = _leaderRunner;
            if (_captureInto == null && !runner.Done && _state != DomainState.Exited)
            {
                _captureOnLeader ??= CaptureOnLeader;
                _captureInto = into;
                _preCaptured = into;
                _captureDone = false;
                _captureError = null;
                runner.Work.Enqueue(_captureOnLeader);
                Monitor.PulseAll(_lock); // a leader parked already (a paused domain) serves it now
            }
        }
        Pause();
    }

    /// <summary>The capture <see cref="PauseForCapture"/> asked for, if it is <paramref name="into"/>'s and usable.</summary>
    private bool TakePreCaptured(CapturedStates into)
    {
        bool done;
        lock (_lock)
        {
            if (_preCaptured is null) return false;
            bool mine = ReferenceEquals(_preCaptured, into);
            var runner = _leaderRunner;
            while (!_captureDone && !runner.Done && _state != DomainState.Exited) Monitor.Wait(_lock);
            done = _captureDone && mine;
            _preCaptured = null;
            _captureInto = null;
        }
        if (!done || !OnlyLeaderCheckpointed()) return false; // another thread appeared, or nothing was taken: the general path
        if (_captureError is { } error)
            throw error is SandboxException or InvalidOperationException ? error : new SandboxException(error.Message, error);
        return true;
    }

    /// <summary>
    /// Whether a checkpoint carries the leader's thread alone (what <see cref="CheckpointedRunners"/> would list, without
    /// making the list): no other live task. A task with no runner, or any doubt, takes the general path.
    /// </summary>
    private bool OnlyLeaderCheckpointed()
    {
        var leader = _kernel.Leader;
        var tasks = _kernel.Tasks;
        for (int i = 0; i < tasks.Count; i++)
            if (tasks[i] != leader && !tasks[i].Exited) return false;
        lock (_lock) return _leaderRunner.Task == leader && !_leaderRunner.Done && _state != DomainState.Exited;
    }

    /// <summary>On the leader's thread, its vCPU parked: both states into <see cref="_captureInto"/>.</summary>
    private void CaptureOnLeader()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var into = _captureInto!;
            var v = _leaderRunner.Vcpu!;
            into.Begin(1);
            var fpu = v.SaveExtendedStateKept();
            VcpuStateFormat.Write(in v.Regs, fpu, into.VcpuBuffer(0, VcpuStateFormat.Length(fpu.Length)));
            into.SetKernel(_kernel.SaveStateKept());
            into.AllocatedOnVcpuThread = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        catch (Exception e)
        {
            _captureError = e;
        }
        _captureDone = true;
    }

    /// <summary>
    /// Applies a checkpoint: the first vCPU state and the kernel state as <see cref="LoadState(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>
    /// says, then every other thread the kernel state lists gets a vCPU (a sibling of the first) and a host thread,
    /// with its saved state, before any runs. A checkpoint of one thread has one vCPU state.
    /// </summary>
    public void LoadState(IReadOnlyList<byte[]> vcpuStates, ReadOnlySpan<byte> kernelState)
    {
        if (vcpuStates.Count == 0) throw new SandboxException("the checkpoint carries no vCPU state");
        var parsed = new List<(UserRegs Regs, byte[] Fpu)>();
        foreach (var s in vcpuStates)
        {
            try
            {
                parsed.Add(VcpuStateFormat.Read(s));
            }
            catch (InvalidDataException e)
            {
                throw new SandboxException($"corrupt vCPU state in the checkpoint: {e.Message}", e);
            }
        }
        PhaseTrace.Mark("L vCPU states parsed");
        LoadLeaderState(parsed[0].Regs, parsed[0].Fpu, kernelState);
        PhaseTrace.Mark("L back from the vCPU thread");
        var tasks = _kernel.CheckpointedTasks();
        if (tasks.Count != parsed.Count)
            throw new SandboxException($"the checkpoint lists {tasks.Count} threads but carries {parsed.Count} vCPU states");
        var started = new List<TaskRunner>();
        List<TaskRunner> existing;
        lock (_lock)
        {
            existing = _runners.Where(r => r != _leaderRunner && !r.Done).ToList();
            // A backup applying checkpoint after checkpoint: threads gone since the last one end here.
            foreach (var r in existing.Where(r => !tasks.Contains(r.Task))) r.Quit = true;
            Monitor.PulseAll(_lock);
        }
        for (int i = 1; i < tasks.Count; i++)
        {
            var (regs, fpu) = parsed[i];
            if (existing.FirstOrDefault(r => r.Task == tasks[i]) is { } have)
            {
                OnTaskThread(have, v => { ApplyVcpuState(v, regs, fpu); return 0; });
                continue;
            }
            IVcpuSeed seed = OnVcpuThread(v =>
            {
                try
                {
                    return v.PrepareSibling();
                }
                catch (NotSupportedException)
                {
                    throw new SandboxException($"the checkpoint has {tasks.Count} threads; this platform runs one vCPU per domain");
                }
            });
            started.Add(StartThread(tasks[i], seed, v => ApplyVcpuState(v, regs, fpu)));
        }
        lock (_lock)
            while (started.Any(r => !r.Ready && !r.Done)) Monitor.Wait(_lock);
        if (started.Any(r => r.Done)) throw new SandboxException("cannot restore the checkpoint's threads (see the log)");
    }

    /// <summary>The registers but this platform's segment selectors, and the FPU/SSE/AVX state in this vCPU's layout.</summary>
    private static void ApplyVcpuState(IVcpu v, UserRegs saved, byte[] fpu)
    {
        v.RestoreExtendedState(fpu);
        ref var r = ref v.Regs;
        saved.Cs = r.Cs; saved.Ss = r.Ss; saved.Ds = r.Ds; saved.Es = r.Es; saved.Fs = r.Fs; saved.Gs = r.Gs;
        r = saved;
    }

    private void LoadLeaderState(UserRegs saved, byte[] fpu, ReadOnlySpan<byte> kernelState)
    {
        byte[] kernel = kernelState.ToArray();
        OnVcpuThread(v =>
        {
            PhaseTrace.Mark("L on the vCPU thread");
            ApplyVcpuState(v, saved, fpu);
            _kernel.LoadState(kernel);
            PhaseTrace.Mark("L kernel state loaded");
            return 0;
        });
    }
}
