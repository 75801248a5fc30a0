using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_fpu</c> (KVM_GET_FPU / KVM_SET_FPU): the legacy x87/SSE state in FXSAVE terms.
/// XSAVE (<see cref="KvmVcpu.GetXsave()"/>) is a superset and what checkpoints store.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmFpu
{
    /// <summary>fpr[8][16]: the eight x87/MMX registers, 16 bytes each.</summary>
    public fixed byte Fpr[128];
    public ushort Fcw;
    public ushort Fsw;
    /// <summary>Abridged tag word, in FXSAVE format.</summary>
    public byte Ftwx;
    public byte Pad1;
    public ushort LastOpcode;
    public ulong LastIp;
    public ulong LastDp;
    /// <summary>xmm[16][16]: xmm0..xmm15.</summary>
    public fixed byte Xmm[256];
    public uint Mxcsr;
    public uint Pad2;

    [UnscopedRef]
    public Span<byte> FprBytes => MemoryMarshal.CreateSpan(ref Fpr[0], 128);

    [UnscopedRef]
    public Span<byte> XmmBytes => MemoryMarshal.CreateSpan(ref Xmm[0], 256);
}
