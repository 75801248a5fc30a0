using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_cpuid_entry2</c>: one CPUID leaf (function) and subleaf (index).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmCpuidEntry2
{
    public uint Function;
    public uint Index;
    public uint Flags;
    public uint Eax;
    public uint Ebx;
    public uint Ecx;
    public uint Edx;
    public fixed uint Padding[3];

    public override readonly string ToString() =>
        $"CPUID 0x{Function:x}.{Index:x}: eax=0x{Eax:x} ebx=0x{Ebx:x} ecx=0x{Ecx:x} edx=0x{Edx:x} flags={Flags}";
}

/// <summary>The header of <c>struct kvm_cpuid2</c> (KVM_SET_CPUID2, KVM_GET_SUPPORTED_CPUID); <see cref="Nent"/>
/// entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmCpuid2
{
    public uint Nent;
    public uint Padding;
}
