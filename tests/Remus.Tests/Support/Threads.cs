using Remus.Sandbox.Platform;

namespace Remus.Tests.Support;

/// <summary>Threaded guests need a platform that runs several vCPUs in a domain: the rows of one that cannot skip.</summary>
public static class Threads
{
    /// <summary>Skips the running test unless <paramref name="kind"/> is here and runs more than one vCPU per domain
    /// (its own <see cref="IVcpu.MaxVcpus"/>).</summary>
    public static void Require(PlatformKind kind)
    {
        Platforms.Require(kind);
        int max = PlatformCapacity.MaxVcpus(kind);
        Xunit.Skip.If(max < 2, $"the {Platforms.Name(kind)} platform runs {max} vCPU per domain (IVcpu.MaxVcpus): no threads");
    }
}
