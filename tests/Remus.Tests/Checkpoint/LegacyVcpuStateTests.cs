using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Remus.Kvm;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A vCPU state written before checkpoints were platform-neutral ("CPU1": the registers, then ptrace's raw
/// NT_X86_XSTATE area or KVM's serialized VcpuState) still loads, on either platform: save files taken then restore.
/// The old bodies are rebuilt here from a fresh capture, byte for byte as the old code wrote them.
/// </summary>
public class LegacyVcpuStateTests
{
    private static byte[] Legacy(in UserRegs regs, ReadOnlySpan<byte> ext)
    {
        int size = Marshal.SizeOf<UserRegs>();
        var blob = new byte[8 + size + ext.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(blob, VcpuStateFormat.LegacyMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(4), (uint)size);
        MemoryMarshal.Write(blob.AsSpan(8), in regs);
        ext.CopyTo(blob.AsSpan(8 + size));
        return blob;
    }

    /// <summary>What the old ptrace platform wrote: NT_X86_XSTATE as read, the user XCR0 in its word at 464.</summary>
    private static byte[] PtraceExt(FpuState fpu)
    {
        byte[] area = (byte[])fpu.Area.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(area.AsSpan(XsaveLayout.SoftwareReserved), fpu.Xcr0);
        return area;
    }

    /// <summary>What the old KVM platform wrote: Remus.Kvm's VcpuState (here with just the parts the conversion
    /// reads: its XSAVE area of at least 4096 bytes, XCR0, CR4.OSXSAVE).</summary>
    private static byte[] KvmExt(FpuState fpu)
    {
        var s = new VcpuState { Xsave = new byte[Math.Max(KvmXsave.Size, fpu.Area.Length)], Xcrs = KvmXcrs.WithXcr0(fpu.Xcr0) };
        fpu.Area.CopyTo(s.Xsave, 0);
        s.Sregs.Cr4 = 1UL << 18;
        return s.Serialize();
    }

    public static TheoryData<PlatformKind, bool> Cases => new()
    {
        { PlatformKind.Ptrace, false }, { PlatformKind.Ptrace, true }, { PlatformKind.Kvm, false }, { PlatformKind.Kvm, true },
    };

    [CrossPlatformTheory]
    [MemberData(nameof(Cases))]
    public void A_version_1_vCPU_state_restores_on_either_platform(PlatformKind to, bool kvmBody)
    {
        string vecregs = GuestBuilder.Build("vecregs");
        string[] args = ["60", "10"];
        var console = new RecordingConsole();
        PlatformKind from = to == PlatformKind.Kvm ? PlatformKind.Ptrace : PlatformKind.Kvm;
        var spec = new DomainSpec { ProgramPath = vecregs, Args = args, MemoryMiB = 16, Platform = from };
        using var first = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(4, TimeSpan.FromSeconds(30));
        first.Domain.Pause();
        var (regs, fpuBytes) = VcpuStateFormat.Read(first.Domain.CaptureVcpuState());
        var fpu = FpuState.Parse(fpuBytes);
        byte[] legacy = Legacy(in regs, kvmBody ? KvmExt(fpu) : PtraceExt(fpu));
        byte[] kernel = first.Domain.CaptureKernelState();

        var second = SandboxDomain.CreateIncoming(spec with { Platform = to }, console);
        var populated = new ulong[first.Domain.DirtyBitmapWords];
        first.Domain.MarkPopulatedPages(populated);
        for (ulong pfn = SandboxDomain.FirstPage; pfn < first.Domain.PageCount; pfn++)
            if ((populated[pfn / 64] & (1UL << (int)(pfn % 64))) != 0) first.Domain.ReadPage(pfn).CopyTo(second.WritablePage(pfn));
        second.LoadState(legacy, kernel);
        first.Domain.Kill();

        using var run = new RunningDomain(second);
        int status = run.Wait(TimeSpan.FromSeconds(60));
        Assert.True(status == 0, $"exit {status}:\n{console.Text}");
        Assert.EndsWith("tick 60 ok\nvector registers intact\n", console.Text);
    }
}
