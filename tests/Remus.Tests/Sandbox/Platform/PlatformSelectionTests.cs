using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.SelfTest;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// How a platform is chosen (<see cref="PlatformSelection.Decide"/>), from made-up self-test results: a forced KVM
/// that fails is one error line; auto never takes a KVM that failed its self-test and otherwise takes the cheaper
/// system call; REMUS_PLATFORM and the domain's own setting force one.
/// </summary>
public sealed class PlatformSelectionTests
{
    private static SelfTestResult Pass(PlatformKind kind, double micros) => new(kind, true, "", micros, 3, true, "x");

    private static SelfTestResult Fail(PlatformKind kind, string problem) => new(kind, false, problem, double.NaN, 3, false, "");

    private static readonly Func<(bool, string)> KvmThere = () => (true, "");
    private static readonly Func<(bool, string)> KvmMissing = () => (false, "/dev/kvm: No such file or directory");

    private static Func<SelfTestResult> Never(string what) => () => throw new InvalidOperationException($"the {what} self-test should not run");

    [Fact]
    public void A_forced_KVM_that_fails_its_self_test_is_one_clear_error()
    {
        var e = Assert.Throws<SandboxException>(() => PlatformSelection.Decide(PlatformKind.Kvm, null, KvmThere,
            () => Fail(PlatformKind.Kvm, "the guest should have made system call 158 (arch_prctl); got signal 11 at rip 0x4000 (address 0x4000)"),
            Never("ptrace")));
        Assert.Equal("cannot use KVM: its self-test failed: the guest should have made system call 158 (arch_prctl); got signal 11 at rip 0x4000 (address 0x4000)", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        // The same through REMUS_PLATFORM=kvm.
        e = Assert.Throws<SandboxException>(() => PlatformSelection.Decide(PlatformKind.Auto, "kvm", KvmThere,
            () => Fail(PlatformKind.Kvm, "boom"), Never("ptrace")));
        Assert.Equal("cannot use KVM: its self-test failed: boom", e.Message);
    }

    [Fact]
    public void A_forced_KVM_without_dev_kvm_says_so_without_a_self_test()
    {
        var e = Assert.Throws<SandboxException>(() => PlatformSelection.Decide(PlatformKind.Kvm, null, KvmMissing, Never("kvm"), Never("ptrace")));
        Assert.Equal("cannot use KVM: /dev/kvm: No such file or directory", e.Message);
    }

    [Fact]
    public void A_forced_KVM_that_passes_is_taken_even_when_slower()
    {
        var choice = PlatformSelection.Decide(PlatformKind.Kvm, null, KvmThere, () => Pass(PlatformKind.Kvm, 141), Never("ptrace"));
        Assert.Equal(PlatformKind.Kvm, choice.Kind);
        Assert.Equal("kvm (forced by the domain's platform setting; kvm self-test passed, syscall 141 µs)", choice.ToString());
    }

    [Fact]
    public void Auto_with_a_failing_KVM_self_test_takes_ptrace_and_says_why()
    {
        var choice = PlatformSelection.Decide(PlatformKind.Auto, null, KvmThere, () => Fail(PlatformKind.Kvm, "xmm0 changed across system calls"), Never("ptrace"));
        Assert.Equal(PlatformKind.Ptrace, choice.Kind);
        Assert.Equal("ptrace (kvm self-test failed: xmm0 changed across system calls)", choice.ToString());
    }

    [Fact]
    public void Auto_without_KVM_takes_ptrace_without_any_self_test()
    {
        var choice = PlatformSelection.Decide(PlatformKind.Auto, null, KvmMissing, Never("kvm"), Never("ptrace"));
        Assert.Equal("ptrace (no usable KVM: /dev/kvm: No such file or directory)", choice.ToString());
    }

    [Theory]
    [InlineData(141.0, 28.0, PlatformKind.Ptrace, "ptrace (kvm self-test passed, syscall 141 µs vs ptrace 28 µs)")]
    [InlineData(1.2, 5.4, PlatformKind.Kvm, "kvm (kvm self-test passed, syscall 1.2 µs vs ptrace 5.4 µs)")]
    [InlineData(34.0, 43.0, PlatformKind.Ptrace, "ptrace (kvm self-test passed, syscall 34 µs vs ptrace 43 µs)")] // within the noise: not clearly cheaper
    [InlineData(20.0, 40.0, PlatformKind.Kvm, "kvm (kvm self-test passed, syscall 20 µs vs ptrace 40 µs)")]
    public void Auto_with_both_passing_takes_the_cheaper_system_call(double kvm, double ptrace, PlatformKind expected, string line)
    {
        var choice = PlatformSelection.Decide(PlatformKind.Auto, null, KvmThere, () => Pass(PlatformKind.Kvm, kvm), () => Pass(PlatformKind.Ptrace, ptrace));
        Assert.Equal(expected, choice.Kind);
        Assert.Equal(line, choice.ToString());
    }

    [Fact]
    public void Auto_takes_a_passing_KVM_when_ptrace_fails()
    {
        var choice = PlatformSelection.Decide(PlatformKind.Auto, null, KvmThere, () => Pass(PlatformKind.Kvm, 141), () => Fail(PlatformKind.Ptrace, "no ptrace"));
        Assert.Equal("kvm (kvm self-test passed; ptrace self-test failed: no ptrace)", choice.ToString());
    }

    [Fact]
    public void REMUS_PLATFORM_forces_a_platform_and_the_domain_setting_beats_it()
    {
        Assert.Equal("ptrace (forced by REMUS_PLATFORM=ptrace)",
            PlatformSelection.Decide(PlatformKind.Auto, "ptrace", KvmThere, Never("kvm"), Never("ptrace")).ToString());
        Assert.Equal("ptrace (forced by the domain's platform setting)",
            PlatformSelection.Decide(PlatformKind.Ptrace, "kvm", KvmThere, Never("kvm"), Never("ptrace")).ToString());
        Assert.Equal(PlatformKind.Ptrace,
            PlatformSelection.Decide(PlatformKind.Auto, "auto", KvmThere, () => Fail(PlatformKind.Kvm, "x"), Never("ptrace")).Kind);
        var e = Assert.Throws<SandboxException>(() => PlatformSelection.Decide(PlatformKind.Auto, "qemu", KvmThere, Never("kvm"), Never("ptrace")));
        Assert.Equal("REMUS_PLATFORM must be auto, kvm or ptrace, not 'qemu'", e.Message);
    }

    [Theory]
    [InlineData("auto", PlatformKind.Auto)]
    [InlineData("KVM", PlatformKind.Kvm)]
    [InlineData(" ptrace ", PlatformKind.Ptrace)]
    [InlineData("xen", null)]
    [InlineData("", null)]
    public void Platform_names_parse(string text, PlatformKind? expected) => Assert.Equal(expected, PlatformSelection.Parse(text));
}
