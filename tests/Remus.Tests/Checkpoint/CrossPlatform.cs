using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// What the cross-platform checkpoint tests need: both platforms, i.e. a KVM that passes its self-test (the same
/// verdict a VMM reaches). The directions are theory data; where KVM is missing or fails, the tests are skipped with
/// the reason.
/// </summary>
public static class CrossPlatform
{
    private static readonly Lazy<string?> s_missing = new(() =>
    {
        if (!PlatformSelection.KvmAvailable(out string why)) return "needs KVM for the other platform: " + why;
        var test = PlatformSelection.KvmSelfTest;
        return test.Passed ? null : "needs KVM for the other platform: its self-test failed: " + test.Problem;
    });

    /// <summary>Why the cross-platform tests cannot run here, or null.</summary>
    public static string? Missing => s_missing.Value;

    /// <summary>
    /// Why a domain on the ptrace platform cannot start its dirty log here (migration and Remus from ptrace need it:
    /// userfaultfd asynchronous write-protect and PAGEMAP_SCAN, Linux 6.7+; kvm-lab's guest kernel is older), or null.
    /// </summary>
    public static string? PtraceDirtyLogMissing =>
        Environment.OSVersion.Version >= new Version(6, 7) ? null
            : $"the ptrace platform's dirty log needs Linux 6.7 or newer (this is {Environment.OSVersion.Version})";

    /// <summary>
    /// Why the end-to-end (CLI) cross-platform tests cannot run here, or null: inside kvm-lab (KVMLAB_GUEST=1) every
    /// `remus` command takes ~10 s under emulation, longer than their ticker runs; the in-process tests are the ones
    /// that show stock KVM there.
    /// </summary>
    public static string? CliTooSlow =>
        Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1"
            ? "inside kvm-lab each remus command takes ~10 s (emulated), longer than the ticker these CLI tests watch runs"
            : null;

    /// <summary>ptrace → KVM and KVM → ptrace.</summary>
    public static TheoryData<PlatformKind, PlatformKind> Directions => new()
    {
        { PlatformKind.Ptrace, PlatformKind.Kvm },
        { PlatformKind.Kvm, PlatformKind.Ptrace },
    };
}

/// <summary>A [Theory] over <see cref="CrossPlatform.Directions"/>, skipped with the reason where KVM cannot be used.</summary>
public sealed class CrossPlatformTheoryAttribute : TheoryAttribute
{
    private bool _cli;

    public CrossPlatformTheoryAttribute()
    {
        if (CrossPlatform.Missing is { } why) Skip = why;
    }

    /// <summary>An end-to-end test through the CLI: also skipped where that is too slow (<see cref="CrossPlatform.CliTooSlow"/>).</summary>
    public bool Cli
    {
        get => _cli;
        set
        {
            _cli = value;
            if (value && Skip is null && CrossPlatform.CliTooSlow is { } why) Skip = why;
        }
    }
}

/// <summary>
/// A [Fact] skipped with the reason where KVM cannot be used; with <see cref="FromPtrace"/>, also where a ptrace
/// domain has no dirty log (a migration or Remus source on ptrace needs one).
/// </summary>
public sealed class CrossPlatformFactAttribute : FactAttribute
{
    private bool _fromPtrace;

    public CrossPlatformFactAttribute()
    {
        if (CrossPlatform.Missing is { } why) Skip = why;
    }

    public bool FromPtrace
    {
        get => _fromPtrace;
        set
        {
            _fromPtrace = value;
            if (value && Skip is null && CrossPlatform.PtraceDirtyLogMissing is { } why) Skip = why;
        }
    }

    private bool _cli;

    /// <summary>An end-to-end test through the CLI: also skipped where that is too slow (<see cref="CrossPlatform.CliTooSlow"/>).</summary>
    public bool Cli
    {
        get => _cli;
        set
        {
            _cli = value;
            if (value && Skip is null && CrossPlatform.CliTooSlow is { } why) Skip = why;
        }
    }
}
