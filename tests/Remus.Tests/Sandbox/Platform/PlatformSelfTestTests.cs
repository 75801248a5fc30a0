using System.Diagnostics;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Ptrace;
using Remus.Sandbox.Platform.SelfTest;
using Remus.Tests.Kvm;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// The self-test guest on real vCPUs: it passes on ptrace and measures a system call; it fails, naming the problem,
/// on vCPUs broken on purpose (FS base ignored, vector registers lost, a wrong fault address); on this host, auto
/// follows the real self-tests; and its bytes are what GNU as makes of its source.
/// </summary>
public sealed class PlatformSelfTestTests(ITestOutputHelper output)
{
    private static SelfTestResult OnPtrace(Func<IVcpu, IVcpu>? wrap = null) =>
        PlatformSelfTest.Run(PlatformKind.Ptrace, memory => wrap is null ? new PtraceVcpu(memory) : wrap(new PtraceVcpu(memory)));

    [Fact]
    public void Passes_on_ptrace_and_measures_the_system_call_round_trip()
    {
        var r = OnPtrace();
        output.WriteLine($"ptrace self-test: {r.Summary}, {r.ElapsedMs:0.0} ms in all, avx {r.Avx}, dirty log {r.DirtyLog}");
        Assert.True(r.Passed, r.Problem);
        Assert.Equal("", r.Problem);
        Assert.True(r.SyscallMicros > 0 && double.IsFinite(r.SyscallMicros), $"syscall {r.SyscallMicros} µs");
        Assert.Equal(System.Runtime.Intrinsics.X86.Avx.IsSupported, r.Avx); // ymm checked wherever the host has AVX
        Assert.Equal("userfaultfd write-protect + PAGEMAP_SCAN", r.DirtyLog);
    }

    [Fact]
    public void Fails_when_the_FS_base_does_not_take_effect()
    {
        var r = OnPtrace(v => new Broken(v) { BeforeRun = inner => { if (inner.Regs.FsBase == SelfTestGuest.Tls) inner.Regs.FsBase = SelfTestGuest.Data; } });
        Assert.False(r.Passed);
        Assert.StartsWith("the FS base set by arch_prctl did not take effect", r.Problem);
        Assert.False(double.IsNaN(r.SyscallMicros)); // it got as far as the loop
    }

    [Fact]
    public void Fails_when_vector_registers_do_not_survive_system_calls()
    {
        byte[]? initial = null;
        var r = OnPtrace(v => new Broken(v)
        {
            BeforeRun = inner =>
            {
                initial ??= inner.SaveExtendedState();       // before the guest loaded xmm0
                inner.RestoreExtendedState(initial);          // ... and back to that at every entry
            },
        });
        Assert.False(r.Passed);
        Assert.Equal("xmm0 changed across system calls", r.Problem);
    }

    [Fact]
    public void Fails_when_the_fault_is_reported_at_the_wrong_address()
    {
        var r = OnPtrace(v => new Broken(v) { AfterRun = exit => exit.Kind == VcpuExitKind.Fault ? exit with { FaultAddress = 0x4000 } : exit });
        Assert.False(r.Passed);
        Assert.Contains("should end in SIGSEGV at that address; got signal 11", r.Problem);
    }

    [Fact]
    public void Fails_with_the_exception_of_a_vCPU_that_cannot_be_built()
    {
        var r = PlatformSelfTest.Run(PlatformKind.Kvm, _ => throw new Remus.Sandbox.SandboxException("cannot use KVM: nope"));
        Assert.False(r.Passed);
        Assert.Equal("cannot use KVM: nope", r.Problem);
    }

    [Fact]
    public void Auto_on_this_host_follows_the_self_tests()
    {
        var auto = PlatformSelection.Auto;
        Assert.Same(auto, PlatformSelection.Auto); // decided once per process
        output.WriteLine($"auto: {auto}");
        if (!PlatformSelection.KvmAvailable(out string why))
        {
            Assert.Equal(new PlatformChoice(PlatformKind.Ptrace, $"no usable KVM: {why}"), auto);
            return;
        }
        var kvm = PlatformSelection.KvmSelfTest;
        Assert.Same(kvm, PlatformSelection.KvmSelfTest); // run once per process
        output.WriteLine($"kvm self-test: {kvm.Summary} ({kvm.ElapsedMs:0.0} ms in all, avx {kvm.Avx}, dirty log {kvm.DirtyLog})");
        if (!kvm.Passed)
        {
            Assert.Equal(new PlatformChoice(PlatformKind.Ptrace, $"kvm self-test failed: {kvm.Problem}"), auto);
            return;
        }
        // A passed self-test ran the whole guest, the measured loop included.
        Assert.True(double.IsFinite(kvm.SyscallMicros) && kvm.SyscallMicros > 0, $"a passed KVM self-test without a syscall figure: {kvm}");
        var ptrace = PlatformSelection.PtraceSelfTest;
        output.WriteLine($"ptrace self-test: {ptrace.Summary} ({ptrace.ElapsedMs:0.0} ms in all)");
        Assert.True(ptrace.Passed, ptrace.Problem);
        Assert.Equal(kvm.SyscallMicros <= ptrace.SyscallMicros / 2 ? PlatformKind.Kvm : PlatformKind.Ptrace, auto.Kind); // KVM only when clearly cheaper
        Assert.StartsWith("kvm self-test passed, syscall ", auto.Reason);
    }

    [GccFact]
    public void The_guest_bytes_are_what_GNU_as_makes_of_its_source()
    {
        const string source = """
            .intel_syntax noprefix
            .set DATA, 0x201000
            .set TLS, 0x202000
              xor r15d, r15d
              mov eax, 1
              cpuid
              and ecx, 0x18000000
              cmp ecx, 0x18000000
              jne 1f
              xor ecx, ecx
              xgetbv
              and eax, 6
              cmp eax, 6
              jne 1f
              mov r15d, 1
            1: movdqu xmm0, [DATA]
              movdqu xmm7, [DATA+0x10]
              test r15d, r15d
              jz 2f
              vmovdqu ymm1, [DATA+0x20]
            2: mov eax, 158
              mov edi, 0x1002
              mov esi, TLS
              syscall
              mov rbx, fs:[0]
              mov r12d, [DATA+0x80]
            3: mov eax, 39
              mov rdi, r12
              syscall
              lea rdx, [r12+1]
              cmp rax, rdx
              jne 9f
              dec r12d
              jnz 3b
              mov rbp, fs:[8]
              movdqu [DATA+0x40], xmm0
              movdqu [DATA+0x50], xmm7
              test r15d, r15d
              jz 4f
              vmovdqu [DATA+0x60], ymm1
            4: mov eax, 60
              mov rdi, rbx
              mov rsi, rbp
              mov rdx, r15
              syscall
              mov rax, [0x10]
            9: ud2

            """;
        string dir = Path.Combine(Path.GetTempPath(), $"remus-selftest-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "g.s"), source);
            Run("as", "--64", "-o", Path.Combine(dir, "g.o"), Path.Combine(dir, "g.s"));
            Run("objcopy", "-O", "binary", "-j", ".text", Path.Combine(dir, "g.o"), Path.Combine(dir, "g.bin"));
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "g.bin")), SelfTestGuest.Program.ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file}: {err}");
    }

    /// <summary>A vCPU broken on purpose around a real one.</summary>
    private sealed class Broken(IVcpu inner) : IVcpu
    {
        public Action<IVcpu>? BeforeRun { get; init; }
        public Func<VcpuExit, VcpuExit>? AfterRun { get; init; }

        public ref UserRegs Regs => ref inner.Regs;

        public VcpuExit Run()
        {
            BeforeRun?.Invoke(inner);
            var exit = inner.Run();
            return AfterRun is null ? exit : AfterRun(exit);
        }

        public void Kick() => inner.Kick();
        public byte[] SaveExtendedState() => inner.SaveExtendedState();
        public void RestoreExtendedState(ReadOnlySpan<byte> state) => inner.RestoreExtendedState(state);
        public void StartDirtyLog() => inner.StartDirtyLog();
        public void HarvestDirty(Span<ulong> bitmap) => inner.HarvestDirty(bitmap);
        public string DirtyLogMode => inner.DirtyLogMode;
        public void Dispose() => inner.Dispose();
    }
}
