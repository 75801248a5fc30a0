using System.Text;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Vmm;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// What a receiver makes of the platform fields of a checkpoint stream's configuration: <c>Platform</c> is where the
/// checkpoint was taken (never the receiver's choice), <c>PlatformSetting</c> the domain's own forced setting, which
/// travels; without it (auto, or a stream from before checkpoints were platform-neutral) the receiver chooses.
/// </summary>
public class StreamPlatformConfigTests
{
    private static ReadOnlyMemory<byte> Json(string platformFields) =>
        Encoding.UTF8.GetBytes($$"""{"Name":"d","Program":"/bin/true",{{platformFields}}}""");

    [Fact]
    public void The_stream_platform_is_the_source_and_the_receiver_chooses()
    {
        var c = IncomingVmm.ParseConfig(Json("\"Platform\":\"ptrace\""));
        Assert.Equal(PlatformKind.Ptrace, c.SourcePlatform);
        Assert.Equal(PlatformKind.Auto, c.Platform);
        Assert.Null(c.PlatformSetting);
    }

    [Fact]
    public void A_forced_setting_travels_with_the_domain()
    {
        var c = IncomingVmm.ParseConfig(Json("\"Platform\":\"kvm\",\"PlatformSetting\":\"ptrace\""));
        Assert.Equal(PlatformKind.Kvm, c.SourcePlatform);
        Assert.Equal(PlatformKind.Ptrace, c.Platform);
    }
}
