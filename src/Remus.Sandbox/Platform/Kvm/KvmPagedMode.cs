using Remus.Kvm;
using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The KVM vCPU over a paged address space (docs/memory.md): CR3 is the program's page tables
/// (<see cref="PageTableEditor.Root"/>), which the kernel edits and which point at the platform's own table of the first
/// 2 MiB; a #PF exit goes to the kernel's fault handler and the program resumes at the faulting instruction. A
/// translation taken away is flushed before the vCPU runs again by switching CR3 between the root and its mirror with
/// CR4.PGE flipped (KVM_SET_SREGS resets the MMU context: enough on stock KVM). kvm_pvm keeps its shadow of tables the
/// VMM edits whatever CR3/CR4 do, so there the address space is told to never take a translation away
/// (<see cref="AddressSpace.RetainTranslations"/>) until a flush that works there exists.
/// </summary>
internal sealed class KvmPagedMode(bool enabled)
{
    public bool Enabled { get; } = enabled;

    /// <summary>A translation was taken away since the vCPU last ran.</summary>
    public bool FlushNeeded { get; set; }

    /// <summary>kvm_pvm: a flush would not reach its shadow pages.</summary>
    public bool KeepsStaleTranslations => Enabled && !KvmPlatform.TakesPageTableEdits;

    public void TranslationChanged()
    {
        if (Enabled && KvmPlatform.TakesPageTableEdits) FlushNeeded = true;
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
