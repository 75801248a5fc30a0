using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// What the vCPU is configured with, derived from KVM_GET_SUPPORTED_CPUID (which is also what KVM_SET_CPUID2 gets,
/// unedited): CR4 (PAE, OSFXSR, OSXMMEXCPT, plus OSXSAVE and FSGSBASE when the CPUID has them), XCR0 (x87, SSE, and
/// AVX / AVX-512 state when supported), and the initial segment registers and MSRs.
/// </summary>
internal sealed class CpuConfig
{
    // CPUID bits (SDM vol. 2A, CPUID).
    private const uint Leaf1EdxFxsr = 1u << 24, Leaf1EdxSse = 1u << 25, Leaf1EdxSse2 = 1u << 26;
    private const uint Leaf1EcxXsave = 1u << 26, Leaf1EcxAvx = 1u << 28;
    private const uint Leaf7EbxFsgsbase = 1u << 0;
    private const uint ExtEdxSyscall = 1u << 11, ExtEdxNx = 1u << 20, ExtEdxLongMode = 1u << 29;

    // XCR0 state components.
    public const ulong XcrX87 = 1 << 0, XcrSse = 1 << 1, XcrAvx = 1 << 2;
    public const ulong XcrAvx512 = (1 << 5) | (1 << 6) | (1 << 7); // opmask, ZMM_Hi256, Hi16_ZMM: all or none

    public bool Xsave { get; private init; }
    public bool Fsgsbase { get; private init; }
    public ulong Cr4 { get; private init; }
    /// <summary>XCR0 to set with KVM_SET_XCRS (meaningful only when <see cref="Xsave"/>).</summary>
    public ulong Xcr0 { get; private init; }

    /// <summary>Why this CPUID cannot run the sandbox (no long mode, SYSCALL, NX or SSE2), or null when it can.</summary>
    public static string? Unsuitable(ReadOnlySpan<KvmCpuidEntry2> cpuid)
    {
        var ext = Find(cpuid, 0x80000001, 0);
        var leaf1 = Find(cpuid, 1, 0);
        if (ext is null || (ext.Value.Edx & ExtEdxLongMode) == 0) return "KVM offers no 64-bit long mode to guests";
        if ((ext.Value.Edx & ExtEdxSyscall) == 0) return "KVM offers no SYSCALL instruction to guests";
        // EFER.NXE: the program's pages without PROT_EXEC carry the XD bit (Memory/PageTableEditor.Leaf).
        if ((ext.Value.Edx & ExtEdxNx) == 0) return "KVM offers no NX (execute-disable) bit to guests";
        const uint sse = Leaf1EdxFxsr | Leaf1EdxSse | Leaf1EdxSse2;
        if (leaf1 is null || (leaf1.Value.Edx & sse) != sse) return "KVM offers no FXSR/SSE/SSE2 to guests";
        return null;
    }

    public static CpuConfig From(ReadOnlySpan<KvmCpuidEntry2> cpuid)
    {
        if (Unsuitable(cpuid) is { } why) throw new SandboxException($"cannot use KVM: {why}");
        var leaf1 = Find(cpuid, 1, 0)!.Value;
        var leaf7 = Find(cpuid, 7, 0);
        var leafD = Find(cpuid, 0xd, 0);

        bool xsave = (leaf1.Ecx & Leaf1EcxXsave) != 0 && leafD is not null;
        bool fsgsbase = leaf7 is { } l7 && (l7.Ebx & Leaf7EbxFsgsbase) != 0;
        ulong cr4 = GuestLayout.Cr4Pae | GuestLayout.Cr4Osfxsr | GuestLayout.Cr4Osxmmexcpt;
        if (xsave) cr4 |= GuestLayout.Cr4Osxsave;
        if (fsgsbase) cr4 |= GuestLayout.Cr4Fsgsbase;

        ulong xcr0 = XcrX87 | XcrSse;
        if (xsave)
        {
            var d = leafD!.Value;
            ulong supported = d.Eax | ((ulong)d.Edx << 32);
            if ((leaf1.Ecx & Leaf1EcxAvx) != 0 && (supported & XcrAvx) != 0)
            {
                xcr0 |= XcrAvx;
                if ((supported & XcrAvx512) == XcrAvx512) xcr0 |= XcrAvx512;
            }
        }
        return new CpuConfig { Xsave = xsave, Fsgsbase = fsgsbase, Cr4 = cr4, Xcr0 = xcr0 };
    }

    private static KvmCpuidEntry2? Find(ReadOnlySpan<KvmCpuidEntry2> cpuid, uint function, uint index)
    {
        foreach (var e in cpuid)
            if (e.Function == function && e.Index == index) return e;
        return null;
    }

    /// <summary>
    /// The vCPU's starting segment state: long mode, ring 0 (the vCPU starts "inside" the syscall stub, at its iretq,
    /// and enters the program through the same path as every return from a syscall). CS/SS are the kernel's,
    /// DS/ES/FS/GS the user data segment (DPL 3, so iretq to ring 3 keeps them), TR the busy 64-bit TSS. The LDT is left
    /// as KVM reset it.
    /// </summary>
    public KvmSregs InitialSregs(KvmSregs reset) => InitialSregs(reset, GuestLayout.Cpu0);

    /// <summary>The same for vCPU <paramref name="cpu"/>: its own GDT and TSS.</summary>
    public KvmSregs InitialSregs(KvmSregs reset, CpuArea cpu)
    {
        KvmSregs s = reset;
        s.Cs = CodeSegment(GuestLayout.KernelCode, dpl: 0);
        s.Ss = DataSegment(GuestLayout.KernelData, dpl: 0);
        s.Ds = s.Es = s.Fs = s.Gs = DataSegment(GuestLayout.UserData, dpl: 3);
        s.Tr = new KvmSegment
        {
            Base = cpu.Tss, Limit = GuestLayout.TssLimit, Selector = GuestLayout.TssSelector,
            Type = Descriptors.TssBusyType, Present = 1, Dpl = 0, Db = 0, S = 0, L = 0, G = 0,
        };
        s.Gdt = new KvmDtable { Base = cpu.Gdt, Limit = GuestLayout.GdtLimit };
        s.Idt = new KvmDtable { Base = GuestLayout.Idt, Limit = GuestLayout.IdtLimit };
        s.Cr0 = GuestLayout.Cr0;
        s.Cr3 = GuestLayout.Pml4;
        s.Cr4 = Cr4;
        s.Efer = GuestLayout.Efer;
        return s;
    }

    /// <summary>A flat 64-bit code segment (type 11: execute/read, accessed; L=1, D=0), as ring3-probe.c builds CS.</summary>
    public static KvmSegment CodeSegment(ushort selector, byte dpl) => new()
    {
        Base = 0, Limit = 0xffffffff, Selector = selector, Type = 11, Present = 1, Dpl = dpl, Db = 0, S = 1, L = 1, G = 1,
    };

    /// <summary>A flat data segment (type 3: read/write, accessed; D/B=1), as ring3-probe.c builds DS/SS.</summary>
    public static KvmSegment DataSegment(ushort selector, byte dpl) => new()
    {
        Base = 0, Limit = 0xffffffff, Selector = selector, Type = 3, Present = 1, Dpl = dpl, Db = 1, S = 1, L = 0, G = 1,
    };

    /// <summary>STAR, LSTAR (the stub that matches CR4.FSGSBASE), CSTAR (no compat mode: 0) and SFMASK.</summary>
    public static KvmMsrEntry[] SyscallMsrs(bool fsgsbase) => SyscallMsrs(fsgsbase, GuestLayout.Cpu0);

    /// <summary>The same for vCPU <paramref name="cpu"/>: LSTAR is its own stub.</summary>
    public static KvmMsrEntry[] SyscallMsrs(bool fsgsbase, CpuArea cpu) =>
    [
        new(GuestLayout.MsrStar, GuestLayout.Star),
        new(GuestLayout.MsrLstar, LstarFor(fsgsbase, cpu)),
        new(GuestLayout.MsrCstar, 0),
        new(GuestLayout.MsrSyscallMask, GuestLayout.SyscallMask),
    ];

    public static ulong LstarFor(bool fsgsbase) => LstarFor(fsgsbase, GuestLayout.Cpu0);

    public static ulong LstarFor(bool fsgsbase, CpuArea cpu) => fsgsbase ? cpu.SyscallStubFsgs : cpu.SyscallStub;
}
