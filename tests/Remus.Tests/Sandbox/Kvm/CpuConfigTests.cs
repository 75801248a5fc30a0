using Remus.Kvm;
using Remus.Sandbox;
using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>CR4/XCR0/segment/MSR configuration derived from a (synthetic) KVM_GET_SUPPORTED_CPUID, and the
/// exception → signal table.</summary>
public sealed class CpuConfigTests
{
    private static KvmCpuidEntry2 Leaf(uint function, uint index = 0, uint eax = 0, uint ebx = 0, uint ecx = 0, uint edx = 0) =>
        new() { Function = function, Index = index, Eax = eax, Ebx = ebx, Ecx = ecx, Edx = edx };

    private const uint Sse = (1u << 24) | (1u << 25) | (1u << 26);
    private const uint LongModeSyscall = (1u << 29) | (1u << 11) | (1u << 20); // with NX

    private static KvmCpuidEntry2[] Cpuid(bool xsave, bool avx, bool fsgsbase, ulong supportedXcr0) =>
    [
        Leaf(0, eax: 0xd),
        Leaf(1, ecx: (xsave ? 1u << 26 : 0) | (avx ? 1u << 28 : 0), edx: Sse),
        Leaf(7, 0, ebx: fsgsbase ? 1u : 0),
        Leaf(0xd, 0, eax: (uint)supportedXcr0, edx: (uint)(supportedXcr0 >> 32)),
        Leaf(0x80000001, edx: LongModeSyscall),
    ];

    [Fact]
    public void A_modern_host_gets_OSXSAVE_FSGSBASE_and_AVX512_state()
    {
        var c = CpuConfig.From(Cpuid(xsave: true, avx: true, fsgsbase: true, supportedXcr0: 0x602e7)); // incl. PKRU, AMX
        Assert.True(c.Xsave);
        Assert.True(c.Fsgsbase);
        Assert.Equal(0x20UL | 0x200 | 0x400 | 0x10000 | 0x40000, c.Cr4); // PAE OSFXSR OSXMMEXCPT FSGSBASE OSXSAVE
        Assert.Equal(0xe7UL, c.Xcr0);                                     // x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM
    }

    [Fact]
    public void XCR0_follows_what_KVM_supports()
    {
        Assert.Equal(0x7UL, CpuConfig.From(Cpuid(true, true, false, 0x7)).Xcr0);
        Assert.Equal(0x7UL, CpuConfig.From(Cpuid(true, true, false, 0x67)).Xcr0);   // partial AVX-512: none of it
        Assert.Equal(0x3UL, CpuConfig.From(Cpuid(true, false, false, 0xe7)).Xcr0);  // no AVX in leaf 1: no AVX state
        Assert.Equal(0x3UL, CpuConfig.From(Cpuid(true, true, false, 0x3)).Xcr0);
        var old = CpuConfig.From(Cpuid(false, false, false, 0));
        Assert.False(old.Xsave);
        Assert.False(old.Fsgsbase);
        Assert.Equal(0x20UL | 0x200 | 0x400, old.Cr4);                              // exactly ring3-probe.c minus OSXSAVE
    }

    [Fact]
    public void A_CPUID_without_long_mode_is_unsuitable()
    {
        KvmCpuidEntry2[] cpuid = [Leaf(1, edx: Sse), Leaf(0x80000001, edx: 1u << 11)];
        Assert.Contains("long mode", CpuConfig.Unsuitable(cpuid));
        Assert.Throws<SandboxException>(() => CpuConfig.From(cpuid));
        Assert.Null(CpuConfig.Unsuitable(Cpuid(true, true, true, 7)));
        KvmCpuidEntry2[] noNx = [Leaf(1, edx: Sse), Leaf(0x80000001, edx: (1u << 29) | (1u << 11))];
        Assert.Contains("NX", CpuConfig.Unsuitable(noNx)); // the program's no-execute pages need EFER.NXE
    }

    [Fact]
    public void Initial_segments_put_the_vCPU_in_ring_0_long_mode_with_our_tables()
    {
        var c = CpuConfig.From(Cpuid(true, true, true, 7));
        KvmSregs reset = default;
        reset.Ldt = new KvmSegment { Limit = 0xffff, Type = 2, Present = 1 };
        KvmSregs s = c.InitialSregs(reset);
        Assert.Equal((ushort)0x08, s.Cs.Selector);
        Assert.Equal("type 11 p 1 dpl 0 s 1 l 1 db 0 g 1", Describe(s.Cs));
        Assert.Equal((ushort)0x10, s.Ss.Selector);
        Assert.Equal("type 3 p 1 dpl 0 s 1 l 0 db 1 g 1", Describe(s.Ss));
        foreach (var seg in new[] { s.Ds, s.Es, s.Fs, s.Gs })
        {
            Assert.Equal((ushort)0x1b, seg.Selector);
            Assert.Equal("type 3 p 1 dpl 3 s 1 l 0 db 1 g 1", Describe(seg));
            Assert.Equal(0UL, seg.Base);
        }
        Assert.Equal((ushort)0x28, s.Tr.Selector);
        Assert.Equal((GuestLayout.Tss, 0x70u), (s.Tr.Base, s.Tr.Limit));
        Assert.Equal("type 11 p 1 dpl 0 s 0 l 0 db 0 g 0", Describe(s.Tr));
        Assert.Equal((reset.Ldt.Type, reset.Ldt.Limit), (s.Ldt.Type, s.Ldt.Limit));
        Assert.Equal((GuestLayout.Gdt, (ushort)55), (s.Gdt.Base, s.Gdt.Limit));
        Assert.Equal((GuestLayout.Idt, (ushort)511), (s.Idt.Base, s.Idt.Limit));
        Assert.Equal(0x80050033UL, s.Cr0);      // PG AM WP NE ET MP PE
        Assert.Equal(GuestLayout.Pml4, s.Cr3);
        Assert.Equal(c.Cr4, s.Cr4);
        Assert.Equal(0xd01UL, s.Efer);          // NXE LMA LME SCE
    }

    private static string Describe(KvmSegment g) =>
        $"type {g.Type} p {g.Present} dpl {g.Dpl} s {g.S} l {g.L} db {g.Db} g {g.G}";

    [Fact]
    public void Syscall_MSRs_match_ring3_probe_and_mask_the_dangerous_flags()
    {
        var msrs = CpuConfig.SyscallMsrs(fsgsbase: false);
        Assert.Equal((0xc0000081u, (0x10UL << 48) | (0x08UL << 32)), (msrs[0].Index, msrs[0].Data)); // STAR
        Assert.Equal((0xc0000082u, GuestLayout.SyscallStub), (msrs[1].Index, msrs[1].Data));       // LSTAR
        Assert.Equal((0xc0000083u, 0UL), (msrs[2].Index, msrs[2].Data));                            // CSTAR
        Assert.Equal(0xc0000084u, msrs[3].Index);                                                   // SFMASK
        ulong mask = msrs[3].Data;
        foreach (ulong flag in (ulong[])[0x100 /* TF */, 0x200 /* IF */, 0x400 /* DF */, 0x4000 /* NT */, 0x40000 /* AC */, 0x3000 /* IOPL */])
            Assert.Equal(flag, mask & flag);
        Assert.Equal(GuestLayout.SyscallStubFsgs, CpuConfig.SyscallMsrs(fsgsbase: true)[1].Data);
        // Flags a user context may carry: never IOPL, VM (17), VIF (19), VIP (20).
        Assert.Equal(0UL, GuestLayout.UserFlagMask & (0x3000UL | (1 << 17) | (1 << 19) | (1 << 20)));
    }

    [Theory]
    [InlineData(0, 8)]   // #DE  -> SIGFPE
    [InlineData(1, 5)]   // #DB  -> SIGTRAP
    [InlineData(3, 5)]   // #BP  -> SIGTRAP
    [InlineData(6, 4)]   // #UD  -> SIGILL
    [InlineData(11, 7)]  // #NP  -> SIGBUS (Linux)
    [InlineData(12, 7)]  // #SS  -> SIGBUS (Linux: do_error_trap(..., "stack segment", SIGBUS))
    [InlineData(13, 11)] // #GP  -> SIGSEGV
    [InlineData(14, 11)] // #PF  -> SIGSEGV
    [InlineData(16, 8)]  // #MF  -> SIGFPE
    [InlineData(17, 7)]  // #AC  -> SIGBUS
    [InlineData(19, 8)]  // #XM  -> SIGFPE
    [InlineData(2, 0)]   // NMI: not a user signal
    [InlineData(8, 0)]   // #DF: platform failure
    [InlineData(18, 0)]  // #MC
    [InlineData(31, 0)]  // reserved
    public void Exceptions_map_to_Linux_signals(int vector, int signal) => Assert.Equal(signal, ExceptionMap.Signal(vector));

    [Fact]
    public void Fault_addresses_are_what_Linux_puts_in_si_addr()
    {
        Assert.Equal(0x1234UL, ExceptionMap.FaultAddress(14, rip: 0x400000, cr2: 0x1234)); // #PF: CR2
        Assert.Equal(0x400000UL, ExceptionMap.FaultAddress(6, 0x400000, 0x1234));           // #UD: rip
        Assert.Equal(0x400000UL, ExceptionMap.FaultAddress(0, 0x400000, 0x1234));           // #DE: rip
        Assert.Equal(0UL, ExceptionMap.FaultAddress(13, 0x400000, 0x1234));                 // #GP: 0
        Assert.Equal("#PF", ExceptionMap.Name(14));
    }
}
