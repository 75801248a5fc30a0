using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_lapic_state</c> (KVM_GET_LAPIC / KVM_SET_LAPIC): the 1024-byte local APIC register page.
/// Exists only when the VM has an in-kernel irqchip (<see cref="KvmVm.CreateIrqchip"/>).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmLapicState
{
    public const int Size = 0x400;
    public fixed byte Regs[Size];

    [UnscopedRef]
    public Span<byte> Bytes => MemoryMarshal.CreateSpan(ref Regs[0], Size);
}
