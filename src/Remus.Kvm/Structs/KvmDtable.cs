using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_dtable</c>: GDTR or IDTR.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmDtable
{
    public ulong Base;
    public ushort Limit;
    public fixed ushort Padding[3];
}
