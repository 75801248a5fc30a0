namespace Remus.Sandbox.Platform;

/// <summary>
/// One virtual CPU running the guest program's ring 3. All calls but <see cref="Kick"/> must come from the thread
/// that created it (ptrace and KVM both bind a vCPU to its thread).
/// </summary>
public interface IVcpu : IDisposable
{
    /// <summary>The register file: valid after Run returns; changes are loaded by the next Run.</summary>
    ref UserRegs Regs { get; }

    /// <summary>Runs the guest until it makes a system call, faults, or is kicked.</summary>
    VcpuExit Run();

    /// <summary>Makes a running (or the next) Run return <see cref="VcpuExitKind.Kicked"/> soon. Any thread.</summary>
    void Kick();

    /// <summary>The full architectural state beyond <see cref="Regs"/> (FPU/SSE/AVX), opaque, for checkpoints.</summary>
    byte[] SaveExtendedState();

    /// <summary>
    /// What <see cref="SaveExtendedState"/> returns, in a buffer this vCPU keeps (valid until its next call): a
    /// checkpoint takes it every epoch, and nothing is allocated for it (issue 14).
    /// </summary>
    ReadOnlySpan<byte> SaveExtendedStateKept() => SaveExtendedState();

    /// <summary>Restores what <see cref="SaveExtendedState"/> returned.</summary>
    void RestoreExtendedState(ReadOnlySpan<byte> state);

    /// <summary>
    /// The FPU/SSE/AVX registers in the standard XSAVE format (<see cref="XsaveLayout"/>), exactly
    /// <see cref="XsaveLayout.UserSize"/>(<see cref="XstateFeatures"/>) bytes: what a Linux signal frame holds.
    /// </summary>
    byte[] GetXstate() => throw new NotSupportedException("this platform cannot read the vector registers");

    /// <summary>Loads an area of the form <see cref="GetXstate"/> returns (sanitized by the caller).</summary>
    void SetXstate(ReadOnlySpan<byte> area) => throw new NotSupportedException("this platform cannot write the vector registers");

    /// <summary>The state components the program's XCR0 enables (x87 and SSE at least).</summary>
    ulong XstateFeatures => XsaveLayout.FpSse;

    /// <summary>How <see cref="StartDirtyLog"/> tracks writes, for people (remus info): e.g. "KVM_GET_DIRTY_LOG".</summary>
    string DirtyLogMode => "a dirty log";

    /// <summary>
    /// The CPU time (ns) the guest has used on this vCPU, counted by the host from when the vCPU was made (a new vCPU
    /// starts again near 0: the kernel keeps the offset a checkpoint carries). The default is the CPU time of the
    /// calling thread, which on KVM is the thread that runs KVM_RUN (guest time plus the system calls it served),
    /// and is right only when called on the vCPU thread.
    /// </summary>
    long CpuTimeNs => Math.Max(0, Libc.ClockNs(Libc.CLOCK_THREAD_CPUTIME_ID));

    /// <summary>Starts tracking which guest pages the vCPU writes (idempotent). Paused, on the vCPU thread.</summary>
    void StartDirtyLog() => throw new NotSupportedException("this platform has no dirty log");

    /// <summary>
    /// ORs into <paramref name="bitmap"/> (bit n = guest page n) the pages the vCPU wrote since the last harvest (or
    /// since <see cref="StartDirtyLog"/>), and starts a new round. Any thread, running or paused.
    /// </summary>
    void HarvestDirty(Span<ulong> bitmap) => throw new NotSupportedException("this platform has no dirty log");

    /// <summary>The same into a <see cref="DirtyPageSet"/> (the platforms add what they find page by page, without
    /// walking the whole bitmap); this default walks it.</summary>
    void HarvestDirty(DirtyPageSet set)
    {
        HarvestDirty(set.Bitmap);
        set.Resummarize();
    }

    /// <summary>
    /// A hint: the platform may stop tracking writes to the pages set in <paramref name="bitmap"/> (replacing the
    /// previous set); every harvest then reports them as written whether they were or not, and a page that leaves
    /// the set is reported by the next harvest once more. For pages written in most epochs this trades a
    /// write-protection fault per page per epoch for a comparison by the caller. Ignoring the hint (reporting only
    /// written pages) is correct. Any thread, running or paused.
    /// </summary>
    void SetUntracked(ReadOnlySpan<ulong> bitmap) { }

    /// <summary>
    /// The program's permissions on guest memory [start, start+length) are now <paramref name="prot"/> (PROT_* bits;
    /// -1: nothing mapped there). A platform that can enforce them in the vCPU does, so that the program's own
    /// accesses fault as on Linux; one that cannot (KVM on kvm_pvm) ignores it. On the vCPU
    /// thread.
    /// </summary>
    void ProtectRange(ulong start, ulong length, int prot) { }

    /// <summary>
    /// Paged address space (docs/memory.md): the translations of the program's virtual pages [start, start+length)
    /// changed or went away (unmap, protection change, move, freed frames, a restore); the platform drops whatever it
    /// cached of them before any vCPU of this address space runs again (ptrace: unmaps them in the stub, to be faulted
    /// back in; KVM: a TLB flush). Must be safe for an address space several vCPUs share. On the vCPU thread.
    /// </summary>
    void TranslationChanged(ulong start, ulong length) { }

    /// <summary>
    /// Paged address space: a fault backed the program's pages [start, start+pages*4096) with the contiguous guest
    /// frames from <paramref name="firstFrame"/> on, with protection <paramref name="prot"/>. A platform whose MMU walks
    /// the page tables itself (KVM) ignores it; ptrace maps them into the stub. On the vCPU thread.
    /// </summary>
    void MapPages(ulong start, ulong firstFrame, ulong pages, int prot) { }

    /// <summary>
    /// Paged address space: true when this platform's vCPUs drop a cached translation only when its frame is zapped
    /// (a shadow MMU: kvm_pvm). The address space then keeps its table pages (<see cref="Memory.AddressSpace.KeepPageTables"/>)
    /// and tells <see cref="RetireFrames"/> which frames lost or moved a translation.
    /// </summary>
    bool KeepsPageTables => false;

    /// <summary>
    /// Paged address space, when <see cref="KeepsPageTables"/>: the frames [firstFrame, firstFrame+count) are still in
    /// use but a translation to them was reduced or moved; no vCPU of this address space may use the old one once
    /// this returns. On the vCPU thread.
    /// </summary>
    void RetireFrames(ulong firstFrame, ulong count) { }

    /// <summary>Where the platform writes what it cannot return as an exit or exception but a log reader needs (e.g.
    /// the KVM platform's diagnostic block for a fault in its stubs). Optional: a platform may say nothing.</summary>
    void SetLog(Action<string>? log) { }

    /// <summary>Prepares a vCPU for a new guest thread sharing this vCPU's VM and memory. Called on this vCPU's thread
    /// while it is not running. The new vCPU starts with a copy of this one's registers (Regs, FS/GS base) and extended
    /// state as of this call; the kernel then sets what clone changes (rax, rsp, fs base, rip).</summary>
    IVcpuSeed PrepareSibling() => throw new NotSupportedException("this platform runs one vCPU per domain");

    /// <summary>How many vCPUs this platform can run in one domain (1 when it cannot run siblings).</summary>
    int MaxVcpus => 1;
}

/// <summary>A vCPU prepared by <see cref="IVcpu.PrepareSibling"/>, not yet bound to a thread.</summary>
public interface IVcpuSeed : IDisposable
{
    /// <summary>Creates the vCPU; called once, on the new vCPU's own host thread.</summary>
    IVcpu Attach();
}
