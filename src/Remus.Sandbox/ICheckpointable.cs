namespace Remus.Sandbox;

/// <summary>
/// The narrow interface the checkpoint engine (save/restore, migration, Remus) uses to talk to a domain (DESIGN.md
/// §3): pause and resume, guest pages, the dirty log, and the vCPU and kernel state. <see cref="SandboxDomain"/> is
/// the real one; the engine knows nothing else of it, so another personality, or a simulated domain in the Remus
/// fault-injection tests, can stand in its place.
/// </summary>
public interface ICheckpointable : IDisposable
{
    DomainState State { get; }

    /// <summary>
    /// The program's exit status once <see cref="State"/> is <see cref="DomainState.Exited"/> (a Remus primary sends
    /// it in the EXIT record). <see cref="SandboxDomain.ExitStatus"/> implements it; a stand-in that does not says 0.
    /// </summary>
    int ExitStatus => 0;

    /// <summary>Stops the vCPU and returns once it is stopped (idempotent).</summary>
    void Pause();

    /// <summary>Lets a paused vCPU go on (idempotent).</summary>
    void Unpause();

    /// <summary>Number of guest pages.</summary>
    ulong PageCount { get; }

    /// <summary>The first page that belongs to the program; pages below it are the platform's and never transferred.</summary>
    ulong ProgramFirstPage { get; }

    /// <summary>Words in a dirty bitmap covering every guest page.</summary>
    int DirtyBitmapWords { get; }

    /// <summary>Page <paramref name="pfn"/>. Consistent only while paused (pre-copy reads it live).</summary>
    ReadOnlySpan<byte> ReadPage(ulong pfn);

    /// <summary>Page <paramref name="pfn"/> to fill, on a domain being restored (before <see cref="LoadState"/>).</summary>
    Span<byte> WritablePage(ulong pfn);

    /// <summary>
    /// Fills pages <paramref name="firstPfn"/>.. with <paramref name="pages"/> (whole pages), on a domain being
    /// restored, as <see cref="WritablePage"/> would. <see cref="SandboxDomain"/> writes them without first-touching a
    /// mapping (much cheaper for memory that has never been written); this default copies page by page.
    /// </summary>
    void WritePages(ulong firstPfn, ReadOnlySpan<byte> pages)
    {
        const int P = 4096;
        for (int i = 0; i < pages.Length / P; i++) pages.Slice(i * P, P).CopyTo(WritablePage(firstPfn + (ulong)i));
    }

    /// <summary>Starts the dirty log: from here every page written by the program or by the kernel is reported.</summary>
    void StartDirtyLog();

    /// <summary>ORs into <paramref name="bitmap"/> every program page that holds data (the rest reads as zeros).</summary>
    void MarkPopulatedPages(Span<ulong> bitmap);

    /// <summary>ORs into <paramref name="bitmap"/> the pages written since the last harvest. Safe while running.</summary>
    void HarvestDirty(Span<ulong> bitmap);

    /// <summary>
    /// Adds to <paramref name="set"/> the pages written since the last harvest, like <see cref="HarvestDirty(Span{ulong})"/>.
    /// <see cref="SandboxDomain"/> does it in O(pages written) on our side (the epoch loop's pause); this default walks
    /// the whole bitmap.
    /// </summary>
    void HarvestDirty(DirtyPageSet set)
    {
        HarvestDirty(set.Bitmap);
        set.Resummarize();
    }

    /// <summary>A hint: pages the caller compares itself (see <see cref="SandboxDomain.SetUntracked"/>).</summary>
    void SetUntracked(ReadOnlySpan<ulong> bitmap);

    /// <summary>The vCPU's registers and extended state. Paused.</summary>
    byte[] CaptureVcpuState();

    /// <summary>The kernel's objects. Paused.</summary>
    byte[] CaptureKernelState();

    /// <summary>
    /// On a domain being restored, after pages were written and before the state comes (a migration's rounds, a Remus
    /// backup's initial synchronisation): a hint to do now what <see cref="LoadState(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>
    /// can prepare from the pages so far, so that it only redoes what changes after (issue 14: a migration's downtime).
    /// Changes nothing observable. Default: nothing.
    /// </summary>
    void PrepareLoad() { }

    /// <summary>Applies the vCPU and kernel state of a checkpoint (after its pages).</summary>
    void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState);

    /// <summary>
    /// Every thread's vCPU state, one VCPU_STATE record each (vCPU id = index; the first thread first). Paused. A
    /// domain with one vCPU has one.
    /// </summary>
    IReadOnlyList<byte[]> CaptureVcpuStates() => [CaptureVcpuState()];

    /// <summary>
    /// <see cref="CaptureVcpuStates"/> and <see cref="CaptureKernelState"/> together (a checkpoint's pause takes both):
    /// <see cref="SandboxDomain"/> takes them in one visit to the vCPU thread when the program has one thread. Paused.
    /// </summary>
    (IReadOnlyList<byte[]> Vcpus, byte[] Kernel) CaptureStates() => (CaptureVcpuStates(), CaptureKernelState());

    /// <summary>
    /// <see cref="CaptureStates()"/> into buffers the caller keeps from checkpoint to checkpoint (the Remus epoch
    /// loop: issue 14). Paused.
    /// </summary>
    void CaptureStates(CapturedStates into)
    {
        var (vcpus, kernel) = CaptureStates();
        into.Set(vcpus, kernel);
    }

    /// <summary>
    /// <see cref="Pause"/> for a checkpoint whose <see cref="CaptureStates(CapturedStates)"/> into
    /// <paramref name="into"/> follows in the same pause: <see cref="SandboxDomain"/> has the vCPU thread take the
    /// states as it parks, so that the capture costs no second visit (the Remus pause, issue 14). This default pauses.
    /// </summary>
    void PauseForCapture(CapturedStates into) => Pause();

    /// <summary>Applies a checkpoint with one vCPU state per thread (in vCPU id order) and the kernel state.</summary>
    void LoadState(IReadOnlyList<byte[]> vcpuStates, ReadOnlySpan<byte> kernelState)
    {
        if (vcpuStates.Count != 1)
            throw new SandboxException($"the checkpoint carries {vcpuStates.Count} vCPU states; this domain takes one");
        LoadState(vcpuStates[0], kernelState);
    }

    /// <summary>The domain's writable volumes as replication sees them (issue 10); null when it has none.</summary>
    Remus.Sandbox.Volumes.IVolumeReplica? Volumes => null;
}
