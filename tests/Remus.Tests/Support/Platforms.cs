using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Support;

/// <summary>
/// The platforms a per-platform test runs on. Theory data always has a row for each concrete platform (ptrace, KVM),
/// so the test list is the same on every machine; a row whose platform this machine lacks calls <see cref="Require"/>
/// first and is reported skipped with the reason (a [SkippableTheory]). Whether a platform is here is the product's
/// own verdict: its self-test (<see cref="PlatformSelection.KvmSelfTest"/>, <see cref="PlatformSelection.PtraceSelfTest"/>),
/// run once per test process. A test passes the platform to its domains as the domain's own setting
/// (<c>DomainSpec.Platform</c>, the config key <c>platform</c>, <c>remus run --platform</c>), which wins over
/// REMUS_PLATFORM.
/// </summary>
public static class Platforms
{
    /// <summary>Set (to anything but "" or "0") to test as if this machine had no usable /dev/kvm: the KVM rows and
    /// [KvmFact]s skip and the kvm-lab test runs them in the lab instead.</summary>
    public const string AssumeNoKvmVariable = "REMUS_TEST_ASSUME_NO_KVM";

    /// <summary>The concrete platforms, ptrace first.</summary>
    public static IReadOnlyList<PlatformKind> Each { get; } = [PlatformKind.Ptrace, PlatformKind.Kvm];

    /// <summary>Theory data: one row per concrete platform.</summary>
    public static TheoryData<PlatformKind> All()
    {
        var d = new TheoryData<PlatformKind>();
        foreach (var p in Each) d.Add(p);
        return d;
    }

    /// <summary>"ptrace" or "kvm", as the config key and --platform spell it.</summary>
    public static string Name(PlatformKind kind) => PlatformSelection.NameOf(kind);

    /// <summary>Whether the tests are told to act as if KVM were missing (<see cref="AssumeNoKvmVariable"/>).</summary>
    public static bool AssumeNoKvm => Environment.GetEnvironmentVariable(AssumeNoKvmVariable) is { Length: > 0 } v && v != "0";

    /// <summary>Whether this machine can run domains on <paramref name="kind"/>; else why not, in one line.</summary>
    public static bool Has(PlatformKind kind, out string reason)
    {
        if (kind == PlatformKind.Kvm && AssumeNoKvm)
        {
            reason = $"{AssumeNoKvmVariable} is set";
            return false;
        }
        var result = kind switch
        {
            PlatformKind.Kvm => PlatformSelection.KvmSelfTest,
            PlatformKind.Ptrace => PlatformSelection.PtraceSelfTest,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "a concrete platform"),
        };
        reason = result.Passed ? "" : result.Problem;
        return result.Passed;
    }

    /// <summary>Skips the running [SkippableTheory]/[SkippableFact] with the reason unless this machine has
    /// <paramref name="kind"/>.</summary>
    public static void Require(PlatformKind kind)
    {
        if (!Has(kind, out string reason)) Skip.If(true, $"needs the {Name(kind)} platform: {reason}");
    }

    /// <summary>Whether /dev/kvm is usable here for the raw KVM tests ([KvmFact]); else why not.</summary>
    public static bool KvmDeviceUsable(out string reason)
    {
        if (AssumeNoKvm)
        {
            reason = $"{AssumeNoKvmVariable} is set";
            return false;
        }
        return Remus.Kvm.KvmSystem.IsAvailable(out reason);
    }
}
