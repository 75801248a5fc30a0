using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The standard (non-compacted) XSAVE format both platforms hand the kernel layer for signal frames, as Linux's
/// arch/x86/kernel/fpu/signal.c writes it to a frame: the 512-byte legacy (FXSAVE) region, whose bytes 464-511
/// (software reserved) carry the frame's <c>_fpx_sw_bytes</c>; the 64-byte header at 512 (XSTATE_BV, XCOMP_BV);
/// each state component XCR0 enables at the offset CPUID leaf 0xD gives it.
/// </summary>
public static class XsaveLayout
{
    public const int LegacySize = 512, HeaderOffset = 512, HeaderSize = 64, MinSize = LegacySize + HeaderSize;
    public const int SwReservedOffset = 464, MxcsrOffset = 24, MxcsrMaskOffset = 28;
    public const ulong FpSse = 3;

    /// <summary>Bytes of a standard-format area holding every component of <paramref name="xcr0"/>.</summary>
    public static int UserSize(ulong xcr0)
    {
        int size = MinSize;
        if (!X86Base.IsSupported) return size;
        for (int i = 2; i < 63; i++)
        {
            if ((xcr0 & (1UL << i)) == 0) continue;
            var (eax, ebx, _, _) = X86Base.CpuId(0xD, i);
            size = Math.Max(size, ebx + eax);
        }
        return size;
    }

    /// <summary>
    /// Makes an area a program handed back (sigreturn) acceptable to XRSTOR, as Linux does before restoring it:
    /// XSTATE_BV limited to <paramref name="features"/> (components left out return to their initial state),
    /// XCOMP_BV and the reserved header bytes zero, MXCSR limited to the bits the CPU has.
    /// </summary>
    public static void Sanitize(Span<byte> area, ulong features, uint mxcsrMask)
    {
        Span<byte> header = area.Slice(HeaderOffset, HeaderSize);
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(header) & features;
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, bv);
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(area[MxcsrOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(area[MxcsrOffset..], mxcsr & (mxcsrMask == 0 ? 0xFFBFu : mxcsrMask));
        area.Slice(SwReservedOffset, LegacySize - SwReservedOffset).Clear();
    }
}
