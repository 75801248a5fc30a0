using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_sregs</c> (KVM_GET_SREGS / KVM_SET_SREGS): segments, descriptor tables, control registers,
/// EFER, APIC base and the pending-interrupt bitmap.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmSregs
{
    public KvmSegment Cs, Ds, Es, Fs, Gs, Ss;
    public KvmSegment Tr, Ldt;
    public KvmDtable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8;
    public ulong Efer;
    public ulong ApicBase;
    /// <summary>(KVM_NR_INTERRUPTS + 63) / 64 words; at most one bit set (an interrupt injected but not yet taken).</summary>
    public fixed ulong InterruptBitmap[4];

    [UnscopedRef]
    public Span<ulong> InterruptBitmapSpan => MemoryMarshal.CreateSpan(ref InterruptBitmap[0], 4);
}
