using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_xsave</c> without its flexible tail: the 4096-byte XSAVE area of KVM_GET_XSAVE /
/// KVM_SET_XSAVE. With KVM_CAP_XSAVE2 the area may be larger; <see cref="KvmVcpu"/> therefore moves XSAVE state as
/// byte buffers of <see cref="KvmVcpu.XsaveSize"/> bytes and this struct only fixes the ioctl numbers.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmXsave
{
    public const int Size = 4096;
    public fixed uint Region[1024];
}
