using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_msr_entry</c>: one model-specific register.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrEntry
{
    public uint Index;
    public uint Reserved;
    public ulong Data;

    public KvmMsrEntry(uint index, ulong data = 0)
    {
        Index = index;
        Reserved = 0;
        Data = data;
    }

    public override readonly string ToString() => $"MSR 0x{Index:x}=0x{Data:x}";
}

/// <summary>The header of <c>struct kvm_msrs</c> (KVM_GET_MSRS / KVM_SET_MSRS); <see cref="Nmsrs"/> entries follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrs
{
    public uint Nmsrs;
    public uint Pad;
}

/// <summary>The header of <c>struct kvm_msr_list</c> (KVM_GET_MSR_INDEX_LIST); <see cref="Nmsrs"/> u32 indices follow.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMsrList
{
    public uint Nmsrs;
}
