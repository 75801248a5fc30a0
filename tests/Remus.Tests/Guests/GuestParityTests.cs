using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>A program run in a domain prints exactly what it prints natively (stdout and stderr bytes) and exits the same way.</summary>
public sealed class GuestParityTests
{
    public static TheoryData<string, string> Cases => GuestCatalog.CasesByFlavor();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Domain_run_matches_native_run(string guest, string flavor)
    {
        var c = GuestCatalog.Get(guest);
        var inv = c.Invocation(Enum.Parse<GuestFlavor>(flavor));

        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == c.ExpectedExit, $"the native run itself is off (expected exit {c.ExpectedExit}):\n{native}");

        var domain = RemusCli.Run(inv);
        GuestAssert.SameAsNative(native, domain, inv);
    }
}
