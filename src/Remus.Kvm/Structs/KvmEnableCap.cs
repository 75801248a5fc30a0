using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_enable_cap</c> (KVM_ENABLE_CAP).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmEnableCap
{
    public uint Cap;
    public uint Flags;
    public fixed ulong Args[4];
    public fixed byte Pad[64];
}
