using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_userspace_memory_region</c> (KVM_SET_USER_MEMORY_REGION): maps
/// <see cref="MemorySize"/> bytes of host memory at <see cref="UserspaceAddr"/> to guest-physical
/// <see cref="GuestPhysAddr"/>. A size of 0 deletes the slot.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmUserspaceMemoryRegion
{
    public uint Slot;
    /// <summary>KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY.</summary>
    public uint Flags;
    public ulong GuestPhysAddr;
    public ulong MemorySize;
    public ulong UserspaceAddr;
}
