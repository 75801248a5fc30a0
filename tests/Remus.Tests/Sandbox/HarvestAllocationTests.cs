using Remus.Checkpoint;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// Issue 14: the harvest Remus does in every pause (<see cref="SandboxDomain.HarvestDirty(DirtyPageSet)"/>, then the
/// list and the clear) allocates nothing on the harvesting thread, on each platform: an allocation per epoch is a
/// collection sooner or later, and a collection in a pause is the tail.
/// </summary>
public class HarvestAllocationTests
{
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_harvest_of_a_running_domain_allocates_nothing(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("coldwrite"), Args = ["300", "5", "2", "4"], MemoryMiB = 64, Platform = platform };
        using var d = new RunningDomain(SandboxDomain.Create(spec, new RecordingConsole()));
        var set = new DirtyPageSet(d.Domain.DirtyBitmapWords);
        var pfns = new ulong[d.Domain.DirtyBitmapWords * 64];
        d.Domain.Pause();
        d.Domain.StartDirtyLog();
        d.Domain.Unpause();
        long total = 0, listed = 0;
        for (int i = 0; i < 60; i++)
        {
            Thread.Sleep(5);
            d.Domain.Pause();
            if (d.Domain.State == DomainState.Exited) break;
            long before = GC.GetAllocatedBytesForCurrentThread();
            d.Domain.HarvestDirty(set);
            listed += set.CopyTo(pfns, SandboxDomain.FirstPage, d.Domain.PageCount);
            set.Clear();
            if (i > 0) total += GC.GetAllocatedBytesForCurrentThread() - before; // the first may warm up lazily built state
            d.Domain.Unpause();
        }
        Assert.True(listed > 0, "the guest wrote nothing the harvests saw");
        Assert.Equal(0, total);
    }
}
