using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_device_attr</c> (KVM_SET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR on a vCPU fd): one attribute of
/// a group, its value at the host pointer <see cref="Addr"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDeviceAttr
{
    public uint Flags;
    public uint Group;
    public ulong Attr;
    public ulong Addr;
}
