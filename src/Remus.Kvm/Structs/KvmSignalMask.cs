using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary>The header of <c>struct kvm_signal_mask</c> (KVM_SET_SIGNAL_MASK); <see cref="Len"/> bytes of the
/// kernel's sigset_t follow (8 on x86-64, anything else is EINVAL).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmSignalMask
{
    public uint Len;
}
