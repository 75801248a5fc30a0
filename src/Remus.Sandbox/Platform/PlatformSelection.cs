using Remus.Sandbox.Platform.Kvm;
using Remus.Sandbox.Platform.Ptrace;
using Remus.Sandbox.Platform.SelfTest;

namespace Remus.Sandbox.Platform;

/// <summary>
/// Which platform runs a domain. A domain's own setting (config key <c>platform</c>, <c>remus run --platform</c>) wins,
/// then the environment variable <c>REMUS_PLATFORM</c>, then <c>auto</c>: KVM is used only when /dev/kvm is usable
/// and KVM passes its self-test (<see cref="PlatformSelfTest"/>), and then only when its measured system call round
/// trip is at most half ptrace's (on a nested kvm_pvm host a KVM exit costs ~140 µs, a ptrace stop ~5-30 µs).
/// A forced KVM that is missing or fails its self-test is one error line. The self-tests run at most once per
/// process, when first needed; so does the auto decision.
/// </summary>
public static class PlatformSelection
{
    public const string EnvironmentVariable = "REMUS_PLATFORM";

    private static readonly Lazy<SelfTestResult> s_kvm = new(() =>
        KvmPlatform.IsAvailable(out string reason)
            ? PlatformSelfTest.Run(PlatformKind.Kvm, memory => new KvmPlatformVcpu(memory))
            : new SelfTestResult(PlatformKind.Kvm, false, reason, double.NaN, 0, false, ""));

    private static readonly Lazy<SelfTestResult> s_ptrace = new(() =>
        PlatformSelfTest.Run(PlatformKind.Ptrace, memory => new PtraceVcpu(memory)));

    private static readonly Lazy<PlatformChoice> s_auto = new(() =>
        Decide(PlatformKind.Auto, null, KvmAvailability, () => KvmSelfTest, () => PtraceSelfTest));

    /// <summary>"auto", "kvm", "ptrace".</summary>
    public static string NameOf(PlatformKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Reads "auto", "kvm" or "ptrace" (any case); null for anything else.</summary>
    public static PlatformKind? Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "auto" => PlatformKind.Auto,
        "kvm" => PlatformKind.Kvm,
        "ptrace" => PlatformKind.Ptrace,
        _ => null,
    };

    /// <summary>Whether /dev/kvm offers everything the KVM platform needs (no self-test); else why not.</summary>
    public static bool KvmAvailable(out string reason) => KvmPlatform.IsAvailable(out reason);

    private static (bool, string) KvmAvailability() => (KvmAvailable(out string reason), reason);

    /// <summary>KVM's self-test (run once per process, on first use). Not passed, with the reason, where KVM is missing.</summary>
    public static SelfTestResult KvmSelfTest => s_kvm.Value;

    /// <summary>ptrace's self-test (run once per process, on first use).</summary>
    public static SelfTestResult PtraceSelfTest => s_ptrace.Value;

    /// <summary>What <c>auto</c> picks in this process, and why (decided once).</summary>
    public static PlatformChoice Auto => s_auto.Value;

    /// <summary>The platform for a domain that asks for <paramref name="requested"/>, in this environment.</summary>
    /// <exception cref="SandboxException">KVM was forced and is missing or failed its self-test; or REMUS_PLATFORM
    /// holds something else than auto, kvm or ptrace.</exception>
    public static PlatformChoice Choose(PlatformKind requested)
    {
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (requested == PlatformKind.Auto && (string.IsNullOrWhiteSpace(env) || Parse(env) == PlatformKind.Auto))
            return Auto;
        return Decide(requested, env, KvmAvailability, () => KvmSelfTest, () => PtraceSelfTest);
    }

    /// <summary>
    /// The decision itself, from its inputs (the self-tests are asked for only when needed): a forced platform, else
    /// <paramref name="environment"/> (REMUS_PLATFORM's value), else auto.
    /// </summary>
    internal static PlatformChoice Decide(PlatformKind requested, string? environment, Func<(bool Ok, string Reason)> kvmAvailable,
        Func<SelfTestResult> kvm, Func<SelfTestResult> ptrace)
    {
        string forcedBy = "the domain's platform setting";
        if (requested == PlatformKind.Auto && !string.IsNullOrWhiteSpace(environment))
        {
            requested = Parse(environment)
                ?? throw new SandboxException($"{EnvironmentVariable} must be auto, kvm or ptrace, not '{environment}'");
            forcedBy = $"{EnvironmentVariable}={environment}";
        }
        switch (requested)
        {
            case PlatformKind.Ptrace:
                return new PlatformChoice(PlatformKind.Ptrace, $"forced by {forcedBy}");
            case PlatformKind.Kvm:
            {
                var (ok, why) = kvmAvailable();
                if (!ok) throw new SandboxException($"cannot use KVM: {why}");
                var k = kvm();
                if (!k.Passed) throw new SandboxException($"cannot use KVM: its self-test failed: {k.Problem}");
                return new PlatformChoice(PlatformKind.Kvm, $"forced by {forcedBy}; kvm self-test passed, syscall {SelfTestResult.Micros(k.SyscallMicros)}");
            }
            default:
            {
                var (ok, why) = kvmAvailable();
                if (!ok) return new PlatformChoice(PlatformKind.Ptrace, $"no usable KVM: {why}");
                var k = kvm();
                if (!k.Passed) return new PlatformChoice(PlatformKind.Ptrace, $"kvm self-test failed: {k.Problem}");
                var p = ptrace();
                if (!p.Passed) return new PlatformChoice(PlatformKind.Kvm, $"kvm self-test passed; ptrace self-test failed: {p.Problem}");
                string costs = $"syscall {SelfTestResult.Micros(k.SyscallMicros)} vs ptrace {SelfTestResult.Micros(p.SyscallMicros)}";
                // KVM must be clearly cheaper (at most half ptrace's cost), not cheaper within the noise of a loaded host:
                // two VMMs on one host should not choose differently by chance (checkpoints cross platforms, but a
                // domain's costs should not depend on a coin toss). Bare-metal KVM (~1 µs vs ~5 µs) passes easily; a nested kvm_pvm (~30-140 µs vs ~10-40 µs)
                // does not. An unmeasured cost (NaN) is never the cheaper one.
                return k.SyscallMicros <= p.SyscallMicros / 2
                    ? new PlatformChoice(PlatformKind.Kvm, $"kvm self-test passed, {costs}")
                    : new PlatformChoice(PlatformKind.Ptrace, $"kvm self-test passed, {costs}");
            }
        }
    }
}
