using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>A program run in a domain prints exactly what it prints natively (stdout and stderr bytes) and exits the
/// same way, on every platform this machine has (the others are reported skipped, with the reason).</summary>
public sealed class GuestParityTests
{
    public static TheoryData<string, string, PlatformKind> Cases()
    {
        var d = new TheoryData<string, string, PlatformKind>();
        foreach (var platform in Platforms.Each)
            foreach (var row in GuestCatalog.CasesByFlavor())
                d.Add((string)row[0], (string)row[1], platform);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Domain_run_matches_native_run(string guest, string flavor, PlatformKind platform)
    {
        Platforms.Require(platform);
        if (guest == "sigvec" && platform == PlatformKind.Kvm && KvmHidesAvx(out string why)) Skip.If(true, why);
        var c = GuestCatalog.Get(guest);
        var inv = c.Invocation(Enum.Parse<GuestFlavor>(flavor)) with { Platform = platform };

        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == c.ExpectedExit, $"the native run itself is off (expected exit {c.ExpectedExit}):\n{native}");

        var domain = RemusCli.Run(inv);
        GuestAssert.SameAsNative(native, domain, inv);
    }

    /// <summary>
    /// Whether this host's CPU has AVX but its KVM offers none to guests (some nested hosts offer neither XSAVE nor
    /// AVX): sigvec then checks ymm natively and xmm in a KVM domain, rightly, and its outputs cannot match.
    /// </summary>
    private static bool KvmHidesAvx(out string why)
    {
        why = "";
        if (!System.Runtime.Intrinsics.X86.Avx.IsSupported) return false;
        using var kvm = Remus.Kvm.KvmSystem.Open();
        var config = Remus.Sandbox.Platform.Kvm.CpuConfig.From(kvm.GetSupportedCpuid());
        if ((config.Xcr0 & Remus.Sandbox.Platform.Kvm.CpuConfig.XcrAvx) != 0) return false;
        why = "this host's CPU has AVX but its KVM offers no AVX (nor XSAVE) to guests: sigvec checks ymm natively and xmm in a KVM domain";
        return true;
    }
}
