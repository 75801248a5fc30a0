using Remus.Kvm;
using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>The diagnostic block (issue 7 item 7) has everything a log reader needs, in one piece.</summary>
public sealed class KvmDiagnosticsTests
{
    [Fact]
    public void The_block_names_vector_error_code_cr2_frame_segments_with_dpl_and_control_registers()
    {
        // What kvm_pvm did before the layout fix: the syscall stub at CPL 3 took #PF on its own supervisor page.
        var regs = new KvmRegs { Rip = 0x4000, Rsp = 0x7ffff0, Rflags = 0x2, Rcx = 0x401234, R11 = 0x202 };
        var sregs = new KvmSregs
        {
            Cs = CpuConfig.CodeSegment(GuestLayout.UserCode, 3), Ss = CpuConfig.DataSegment(GuestLayout.UserData, 3),
            Cr0 = GuestLayout.Cr0, Cr2 = 0x4000, Cr3 = GuestLayout.Pml4, Cr4 = 0x406a0, Efer = GuestLayout.Efer,
        };
        var frame = new ExceptionFrame(14, 0x5, 0x4000, 0x23, 0x202, 0x7ffff0, 0x1b);
        string block = KvmDiagnostics.Describe("a fault at CPL 3 in the platform's stubs", in regs, sregs, frame);

        Assert.StartsWith("KVM platform: a fault at CPL 3 in the platform's stubs\n", block);
        Assert.Contains("#PF (vector 14), error code 0x5, cr2 0x4000", block);
        Assert.Contains("frame: rip 0x4000 cs 0x23 (rpl 3) rflags 0x202 rsp 0x7ffff0 ss 0x1b", block);
        Assert.Contains("at: syscall stub +0x0", block);
        Assert.Contains("cs 0x23 dpl 3 (CPL 3), ss 0x1b dpl 3", block);
        Assert.Contains($"cr0 0x{GuestLayout.Cr0:x} cr2 0x4000 cr3 0x10000 cr4 0x406a0 efer 0x{GuestLayout.Efer:x}", block);
        Assert.DoesNotContain("\n\n", block);
    }

    [Theory]
    [InlineData(0x401dUL, "syscall stub +0x1d")]
    [InlineData(0x4139UL, "FSGSBASE syscall stub +0x39")]
    [InlineData(0x48e0UL, "exception stub 14 +0x0")]
    [InlineData(0x1000UL, "reserved area")]
    [InlineData(0x400000UL, "program")]
    public void Addresses_are_named_by_what_lies_there(ulong rip, string expected) =>
        Assert.Equal(expected, KvmDiagnostics.Where(rip));

    [Fact]
    public void Without_segment_registers_the_block_says_so()
    {
        var regs = new KvmRegs { Rip = 0x401f };
        string block = KvmDiagnostics.Describe("the vCPU stopped: the vCPU shut down (triple fault)", in regs, null, null);
        Assert.Contains("(segment and control registers unavailable)", block);
        Assert.Contains("rip 0x401f (syscall stub +0x1f)", block);
    }

    [Theory]
    [InlineData(0x3UL, "x87/SSE (XSTATE_BV 0x3)")]
    [InlineData(0x7UL, "x87/SSE, AVX (ymm) (XSTATE_BV 0x7)")]
    [InlineData(0xe7UL, "x87/SSE, AVX (ymm), AVX-512 (zmm, opmask) (XSTATE_BV 0xe7)")]
    [InlineData(0x0UL, "no (XSTATE_BV 0x0)")]
    public void A_refused_XSAVE_area_is_described_by_its_components(ulong xstateBv, string expected)
    {
        var area = new byte[4096];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(area.AsSpan(512), xstateBv);
        Assert.Equal(expected, KvmPlatformVcpu.XsaveComponents(area));
    }
}
