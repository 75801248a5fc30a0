using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The XSAVE state components (Intel SDM vol. 1, ch. 13) as this host lays them out in the standard (non-compacted)
/// format, which both ptrace (PTRACE_GETREGSET NT_X86_XSTATE) and KVM (KVM_GET_XSAVE/KVM_GET_XSAVE2) use. The offset
/// of a component in that format is the CPU's (CPUID leaf 0xD): AMD CPUs without MPX put the AVX-512 components
/// right after AVX (opmask at 832), Intel's leave MPX's gap (opmask at 1088). So a checkpoint records the offsets it
/// was taken with, and the receiver moves each component to its own.
/// </summary>
public static class XsaveLayout
{
    /// <summary>Bytes of the legacy (FXSAVE) region plus the XSAVE header: where component 2 may begin.</summary>
    public const int HeaderEnd = 576;
    /// <summary>XSTATE_BV: which components are not in their initial state.</summary>
    public const int XstateBvOffset = 512;
    /// <summary>XCOMP_BV: zero in the standard format (bit 63 marks the compacted one).</summary>
    public const int XcompBvOffset = 520;
    /// <summary>The software-reserved bytes of the legacy region (464..511): ptrace puts the user XCR0 in the first
    /// eight; nothing there is CPU state.</summary>
    public const int SoftwareReserved = 464, SoftwareReservedEnd = 512;

    public const int X87 = 0, Sse = 1, Avx = 2, Opmask = 5, ZmmHi256 = 6, Hi16Zmm = 7, Pkru = 9;

    /// <summary>The components a user-mode XCR0 can hold (bits 0-62).</summary>
    public const ulong UserMask = 0x7fff_ffff_ffff_ffffUL;

    /// <summary>A component's name for people: "AVX-512 Hi16_ZMM (zmm16-31)".</summary>
    public static string Name(int component) => component switch
    {
        X87 => "x87 FPU",
        Sse => "SSE (xmm0-15)",
        Avx => "AVX (upper halves of ymm0-15)",
        3 => "MPX bound registers",
        4 => "MPX bound configuration",
        Opmask => "AVX-512 opmask (k0-7)",
        ZmmHi256 => "AVX-512 ZMM_Hi256 (upper halves of zmm0-15)",
        Hi16Zmm => "AVX-512 Hi16_ZMM (zmm16-31)",
        Pkru => "PKRU (protection keys)",
        17 => "AMX TILECFG",
        18 => "AMX TILEDATA",
        19 => "APX (r16-r31)",
        _ => $"XSAVE component {component}",
    };

    /// <summary>(offset, size) of <paramref name="component"/> (2..62) in this host's standard XSAVE format; (0, 0) if the
    /// CPU does not have it.</summary>
    public static (int Offset, int Size) HostLayout(int component) =>
        component < 2 || component > 62 ? (0, 0) : s_hostLayout.Value[component];

    /// <summary>Read once: <c>cpuid</c> is a VM exit on a nested host (tens of µs), and checkpoints ask every epoch.</summary>
    private static readonly Lazy<(int Offset, int Size)[]> s_hostLayout = new(() =>
    {
        var layout = new (int, int)[63];
        if (!X86Base.IsSupported) return layout;
        for (int i = 2; i < 63; i++)
        {
            var (eax, ebx, _, _) = X86Base.CpuId(0xd, i);
            layout[i] = eax <= 0 || ebx < HeaderEnd ? (0, 0) : (ebx, eax);
        }
        return layout;
    });

    /// <summary>The user state components this host's kernel gives a process (arch_prctl ARCH_GET_XCOMP_SUPP, Linux
    /// 5.16+), else those CPUID leaf 0xD says the CPU supports; x87|SSE at least.</summary>
    public static ulong HostXcr0 => s_hostXcr0.Value;

    private static readonly Lazy<ulong> s_hostXcr0 = new(ReadHostXcr0);

    private static unsafe ulong ReadHostXcr0()
    {
        const long SYS_arch_prctl = 158, ARCH_GET_XCOMP_SUPP = 0x1021;
        ulong mask = 0;
        if (Libc.syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, (long)&mask, 0) == 0 && mask != 0) return mask & UserMask;
        if (!X86Base.IsSupported) return 3;
        var (eax, _, _, edx) = X86Base.CpuId(0xd, 0);
        return ((uint)eax | ((ulong)(uint)edx << 32) | 3) & UserMask;
    }

    /// <summary>"AVX-512 Hi16_ZMM (zmm16-31), AVX (…)" for the components set in <paramref name="mask"/>.</summary>
    public static string Names(ulong mask)
    {
        var names = new List<string>();
        for (int i = 0; i < 63; i++)
            if ((mask & (1UL << i)) != 0) names.Add(Name(i));
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }

    // ---- signal frames (Kernel/Signals): the area a Linux signal frame holds ----

    public const int LegacySize = 512, HeaderOffset = 512, HeaderSize = 64, MinSize = LegacySize + HeaderSize;
    public const int SwReservedOffset = 464, MxcsrOffset = 24, MxcsrMaskOffset = 28;
    public const ulong FpSse = 3;

    /// <summary>AMX TILEDATA (component 18): a dynamic feature Linux leaves out of a process's state, signal frames
    /// included, until the process asks for it (arch_prctl ARCH_REQ_XCOMP_PERM).</summary>
    public const ulong XtileDataMask = 1UL << 18;

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
