using System.Runtime.InteropServices;
using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>How a vCPU drops translations the VMM took away in the guest's page tables (see <see cref="TlbFlush"/>).</summary>
internal enum TlbFlushMethod
{
    /// <summary>KVM_SET_SREGS with CR3 switched to the other of two identical PML4s and CR4.PGE flipped: KVM resets the
    /// vCPU's MMU context and flushes its TLB. Enough where the hardware walks the guest's tables (EPT/NPT).</summary>
    ResetMmu,
    /// <summary>madvise(MADV_DONTNEED) over the host mapping of the frames whose translations were removed or reduced:
    /// the mmu notifier makes KVM zap every SPTE that maps them (and flush every vCPU's TLB), so the next access walks
    /// the guest's tables afresh. Needed where KVM shadows the guest's tables (kvm_pvm, EPT/NPT off).</summary>
    ZapFrames,
}

/// <summary>
/// Makes a KVM vCPU stop using translations the VMM removed or reduced in the guest's page tables (in guest RAM,
/// written through the VMM's own mapping). Whoever takes a right away calls <see cref="Retire"/> with the frames the
/// old entries pointed to; the vCPU calls <see cref="BeforeRun"/> before its next KVM_RUN. Adding a right needs
/// nothing: no TLB or shadow MMU caches a not-present or read-only entry as a grant.
/// <para><b>Why two methods.</b> With EPT/NPT the CPU walks the guest's tables itself and only its TLB can be stale, so
/// a guest TLB flush is enough: <see cref="TlbFlushMethod.ResetMmu"/> (a changed CR3/CR4 in KVM_SET_SREGS makes
/// <c>__set_sregs</c> in arch/x86/kvm/x86.c call <c>kvm_mmu_reset_context</c>, which unloads the roots; the next entry's
/// <c>kvm_mmu_load</c> in arch/x86/kvm/mmu/mmu.c loads them again and flushes the current TLB).
/// A shadow MMU (kvm_pvm always: the guest runs at CPL 3 on shadow tables; stock KVM with ept=0/npt=0) instead keeps
/// its own copy of each guest table it has seen, write-protected so that the <i>guest's</i> writes trap. The VMM's
/// writes do not trap, and nothing the guest or KVM_SET_SREGS can do drops such a copy: an MMU reset rebuilds the roots
/// from the cached shadow pages (<c>kvm_mmu_find_shadow_page</c> in arch/x86/kvm/mmu/mmu.c reuses a page unless it is
/// <c>unsync</c>, which only the guest's own writes make it), and a guest TLB flush request only syncs unsync pages
/// (<c>kvm_vcpu_flush_tlb_guest</c> → <c>kvm_mmu_sync_roots</c> in arch/x86/kvm/x86.c; PVM's
/// <c>PVM_HC_TLB_FLUSH</c> is that request, arch/x86/kvm/pvm/pvm.c <c>handle_hc_flush_tlb_all</c>, and our stub's
/// <c>syscall</c> reaches LSTAR as an ordinary system call, not as that hypercall). What does drop them is the host
/// side: an mmu-notifier invalidation of the frames' host addresses (<c>kvm_mmu_notifier_invalidate_range_start</c> →
/// <c>kvm_unmap_gfn_range</c>, which zaps the SPTEs mapping those gfns and flushes remote TLBs when it zapped one), or
/// deleting the memory slot. <see cref="TlbFlushMethod.ZapFrames"/> takes the first: MADV_DONTNEED on our MAP_SHARED
/// memfd mapping only drops host PTEs, the data stays in the memfd.</para>
/// <para>Measured with bench/probes/tlb-flush-probe.c (docs/memory.md): on kvm_pvm the zap costs ~3-4 µs per range in
/// the VMM and works every time; CR3/CR4 never does (10 µs, stale); memslot delete + re-add works (~140 µs). In
/// kvm-lab (stock KVM, SVM+NPT under TCG emulation) every method "works", even none, because the emulated VM entry
/// flushes QEMU's TLB; there CR3/CR4 costs ~35 µs and the zap ~210-280 µs (emulated, not representative).</para>
/// <para>The zap covers leaf changes: the frames the removed or reduced entries mapped. An upper-level entry removed or
/// pointed at another table, or a table page freed (it may come back as a table elsewhere), can leave one shadow
/// table linked under two regions (measured: a read in one returned the other's data), so that takes
/// <see cref="RetireTables"/>: the memory slot is deleted and re-added (<c>kvm_arch_flush_shadow_memslot</c> zaps
/// every shadow page of it; ~140 µs on kvm_pvm, and every page refaults). Splitting a 2 MiB page into a table with
/// the same rights, the one upper-level change <see cref="PagePermissions"/> makes, is safe with the zap: the zapped
/// frames refault through a fresh walk.</para>
/// </summary>
internal sealed partial class TlbFlush
{
    private const int MADV_DONTNEED = 4;

    private readonly GuestMemory _memory;
    /// <summary>Frame ranges [start, end) retired since the last flush, adjacent ones merged.</summary>
    private readonly List<(ulong Start, ulong End)> _retired = [];
    private bool _pending, _tablesPending;
    /// <summary>The VM's vCPUs share one TlbFlush (<see cref="KvmMachine.Tlb"/>): every retirement bumps this, and each
    /// vCPU compares it with the generation it last flushed for in <see cref="BeforeRun"/>.</summary>
    private long _generation;
    private readonly Lock _lock = new();

    public TlbFlush(GuestMemory memory, TlbFlushMethod method)
    {
        _memory = memory;
        Method = method;
    }

    public TlbFlushMethod Method { get; }

    /// <summary>Whether a flush is owed before the vCPU runs again.</summary>
    public bool Pending
    {
        get { lock (_lock) return _pending; }
    }

    /// <summary>The generation a new vCPU starts from (its TLB is empty: nothing is owed to it).</summary>
    public long Generation => Volatile.Read(ref _generation);

    /// <summary>Deletes and re-adds the guest RAM slot, carrying its dirty log (<see cref="KvmSlotDirtyLog.Reattach"/>);
    /// set by the vCPU. Needed by <see cref="RetireTables"/> under <see cref="TlbFlushMethod.ZapFrames"/>.</summary>
    public Action? ReattachSlot { get; set; }

    /// <summary>How many flushes were done (tests, benchmarks).</summary>
    public long Flushes { get; private set; }

    /// <summary>The method this host needs: <see cref="TlbFlushMethod.ZapFrames"/> where KVM shadows the guest's page
    /// tables (kvm_pvm; kvm_intel ept=N; kvm_amd npt=0), <see cref="TlbFlushMethod.ResetMmu"/> otherwise (cheaper
    /// there: one ioctl however much was retired). REMUS_KVM_TLB_FLUSH=reset|zap forces one (a measurement knob).</summary>
    public static TlbFlushMethod ForHost()
    {
        switch (Environment.GetEnvironmentVariable("REMUS_KVM_TLB_FLUSH")?.ToLowerInvariant())
        {
            case "reset": return TlbFlushMethod.ResetMmu;
            case "zap": return TlbFlushMethod.ZapFrames;
        }
        return s_shadowPaging.Value ? TlbFlushMethod.ZapFrames : TlbFlushMethod.ResetMmu;
    }

    private static readonly Lazy<bool> s_shadowPaging = new(() =>
        Directory.Exists("/sys/module/kvm_pvm")
        || Off("/sys/module/kvm_intel/parameters/ept")
        || Off("/sys/module/kvm_amd/parameters/npt"));

    private static bool Off(string parameter)
    {
        try
        {
            return File.Exists(parameter) && File.ReadAllText(parameter).Trim() is "N" or "0";
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The translations to the guest-physical frames [start, start+length) were removed or made read-only;
    /// the vCPU must not use the old ones after its next <see cref="BeforeRun"/>.</summary>
    public void Retire(ulong start, ulong length)
    {
        if (length == 0) return;
        lock (_lock) RetireLocked(start, length);
    }

    private void RetireLocked(ulong start, ulong length)
    {
        _pending = true;
        Volatile.Write(ref _generation, _generation + 1);
        if (Method != TlbFlushMethod.ZapFrames) return;
        ulong end = Math.Min(start + length, _memory.Size);
        if (start >= end) return;
        if (_retired.Count > 0 && _retired[^1].End == start)
            _retired[^1] = (_retired[^1].Start, end);
        else
            _retired.Add((start, end));
    }

    /// <summary>An upper-level entry was removed or now points at another table, or a page-table page was freed: the
    /// vCPU must not use anything it cached from the old tables after its next <see cref="BeforeRun"/> (frames retired
    /// with <see cref="Retire"/> are covered too).</summary>
    /// <summary>Every translation may have changed (the paged model's edits, <see cref="KvmPagedMode"/>): each vCPU
    /// resets its MMU before it runs again. For <see cref="TlbFlushMethod.ResetMmu"/> only.</summary>
    public void RetireAll()
    {
        lock (_lock)
        {
            _pending = true;
            Volatile.Write(ref _generation, _generation + 1);
        }
    }

    /// <summary>The two identical roots <see cref="TlbFlushMethod.ResetMmu"/> switches CR3 between: the identity map's,
    /// or the paged model's root and mirror.</summary>
    public (ulong Root, ulong Twin) Roots { get; init; } = (GuestLayout.Pml4, GuestLayout.Pml4Alternate);

    public void RetireTables()
    {
        lock (_lock)
        {
            _pending = true;
            _tablesPending = true;
            Volatile.Write(ref _generation, _generation + 1);
        }
    }

    /// <summary>Does the flush owed to this vCPU, if any (<paramref name="seen"/>: the generation it last flushed for,
    /// updated). On the vCPU thread, before KVM_RUN. A reset is per vCPU; a zap or a slot re-add is VM-wide, so the
    /// first vCPU to come here does it for all.</summary>
    public void BeforeRun(KvmVcpu vcpu, ref long seen)
    {
        if (seen == Generation) return; // the common case, on every KVM_RUN: nothing retired since, no lock
        lock (_lock) BeforeRunLocked(vcpu, ref seen);
    }

    private void BeforeRunLocked(KvmVcpu vcpu, ref long seen)
    {
        if (seen == _generation) return;
        seen = _generation;
        if (Method == TlbFlushMethod.ResetMmu)
        {
            if (_pending) Flushes++;
            _pending = false;
            _tablesPending = false;
            _retired.Clear();
            ResetMmu(vcpu, Roots);
            return;
        }
        if (!_pending) return; // another vCPU of the VM zapped already
        _pending = false;
        bool tables = _tablesPending;
        _tablesPending = false;
        Flushes++;
        if (tables)
        {
            Reattach();
            _retired.Clear(); // the slot's every shadow page went
            return;
        }
        foreach (var (start, end) in _retired) Zap(start, end);
        _retired.Clear();
    }

    private void Reattach()
    {
        if (ReattachSlot is null) throw new InvalidOperationException("no memory slot to re-add: ReattachSlot is not set");
        try
        {
            ReattachSlot();
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM vCPU failed: re-adding guest RAM to drop its shadow page tables: {e.Message}", e);
        }
    }

    private static void ResetMmu(KvmVcpu vcpu, (ulong Root, ulong Twin) roots)
    {
        try
        {
            KvmSregs s = vcpu.GetSregs();
            s.Cr3 = s.Cr3 == roots.Root ? roots.Twin : roots.Root;
            s.Cr4 ^= 1UL << 7; // PGE: no entry is global, so it changes nothing else
            vcpu.SetSregs(s);
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM vCPU failed: flushing its TLB (KVM_SET_SREGS): {e.Message}", e);
        }
    }

    private void Zap(ulong start, ulong end)
    {
        ulong first = start & ~(GuestMemory.PageSize - 1);
        ulong last = (end + GuestMemory.PageSize - 1) & ~(GuestMemory.PageSize - 1);
        if (madvise(_memory.HostBase + (nint)first, (nuint)(last - first), MADV_DONTNEED) != 0)
            throw new SandboxException($"cannot drop the vCPU's translations of guest 0x{first:x}-0x{last:x}: madvise: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint addr, nuint length, int advice);
}
