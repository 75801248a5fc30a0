using Remus.Kvm;
using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The KVM vCPU over a paged address space (docs/memory.md): CR3 is the program's page tables
/// (<see cref="PageTableEditor.Root"/>), which the kernel edits and which point at the platform's own table of the first
/// 2 MiB; a #PF exit goes to the kernel's fault handler and the program resumes at the faulting instruction. A
/// translation taken away is flushed before each vCPU runs again by switching CR3 between the root and its mirror with
/// CR4.PGE flipped (<see cref="TlbFlush"/>, KVM_SET_SREGS resets the MMU context: enough with EPT/NPT). A shadow MMU
/// (kvm_pvm) needs the frames zapped (<see cref="KeepsPageTables"/>: the address space reports them and keeps its
/// table pages, whose stale shadows only a memory-slot re-add would drop, which cannot run while sibling vCPUs do).
/// </summary>
internal sealed class KvmPagedMode(bool enabled)
{
    public bool Enabled { get; } = enabled;

    /// <summary>True where KVM shadows the guest's tables (kvm_pvm): a translation taken away is dropped by zapping its
    /// frame (<see cref="TlbFlush.Retire"/>, which reaches every vCPU), and table pages are never freed or moved, because
    /// dropping a stale shadow table takes a memory-slot re-add, which cannot run while sibling vCPUs do.</summary>
    public bool KeepsPageTables(TlbFlush tlb) => Enabled && tlb.Method == TlbFlushMethod.ZapFrames;

    /// <summary>Translations changed: every vCPU of the VM resets its MMU (root ↔ mirror) before it runs again. On a
    /// shadow MMU nothing here: the frames concerned come through <see cref="KvmPlatformVcpu.RetireFrames"/> (or were
    /// punched out of the memfd, which zaps them), and the tables keep their shape (a slot re-add, the only way to drop a
    /// stale shadow table, must not run while sibling vCPUs do: an access in the gap finds no memory; measured, a
    /// triple fault in a 4-thread program).</summary>
    public void TranslationChanged(TlbFlush tlb)
    {
        if (Enabled && tlb.Method == TlbFlushMethod.ResetMmu) tlb.RetireAll();
    }

    /// <summary>The initial sregs with CR3 on the program's tables (when paged).</summary>
    public KvmSregs Apply(KvmSregs s)
    {
        if (Enabled) s.Cr3 = PageTableEditor.Root;
        return s;
    }

    /// <summary>The two root tables, which the platform's layout (written over the whole first 2 MiB) would erase.</summary>
    public static byte[] SaveRoots(GuestMemory memory)
    {
        if (PageTableEditor.PlatformLowTable != GuestLayout.LowPageTable)
            throw new InvalidOperationException("the page tables point at another low table than the platform's");
        var both = new byte[2 * GuestMemory.PageSize];
        memory.PhysicalRead(PageTableEditor.Root, (int)GuestMemory.PageSize).CopyTo(both);
        memory.PhysicalRead(PageTableEditor.RootMirror, (int)GuestMemory.PageSize).CopyTo(both.AsSpan((int)GuestMemory.PageSize));
        return both;
    }

    public static void RestoreRoots(GuestMemory memory, byte[] both)
    {
        both.AsSpan(0, (int)GuestMemory.PageSize).CopyTo(memory.Physical(PageTableEditor.Root, (int)GuestMemory.PageSize));
        both.AsSpan((int)GuestMemory.PageSize).CopyTo(memory.Physical(PageTableEditor.RootMirror, (int)GuestMemory.PageSize));
    }
}
