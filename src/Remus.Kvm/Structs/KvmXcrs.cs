using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_xcr</c>: one extended control register (XCR0 is number 0).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmXcr
{
    public uint Xcr;
    public uint Reserved;
    public ulong Value;
}

/// <summary><c>struct kvm_xcr xcrs[KVM_MAX_XCRS]</c>, indexable (<c>xcrs.Xcrs[0]</c>).</summary>
[InlineArray(16)]
public struct KvmXcrArray
{
    private KvmXcr _element0;
}

/// <summary><c>struct kvm_xcrs</c> (KVM_GET_XCRS / KVM_SET_XCRS).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmXcrs
{
    public uint NrXcrs;
    public uint Flags;
    public KvmXcrArray Xcrs;
    public fixed ulong Padding[16];

    /// <summary>A kvm_xcrs that sets XCR0 only.</summary>
    public static KvmXcrs WithXcr0(ulong xcr0)
    {
        KvmXcrs x = default;
        x.NrXcrs = 1;
        x.Xcrs[0].Xcr = 0;
        x.Xcrs[0].Value = xcr0;
        return x;
    }
}
