using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Issue 14: on ptrace a 2 MiB region not written for a while leaves the dirty log's scan and is unmapped in the stub;
/// the program's next access maps it back and it is tracked again. A write that is the first access to such a region
/// must still reach the backup: tests/guests/coldwrite.c writes into each region long after its last write and prints
/// a hash of the written cells; after a failover the backup's lines must be the native run's.
/// </summary>
public class ColdRegionFailoverTests
{

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_write_into_a_region_that_went_cold_reaches_the_backup(PlatformKind platform)
    {
        Platforms.Require(platform);
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(10), Timeout = TimeSpan.FromSeconds(2) };
        string program = GuestBuilder.Build("coldwrite");
        // 8 regions, one written every 5 ticks of 10 ms: each region goes 400 ms (40 harvests, more than the 32 after
        // which it goes cold) between writes.
        string[] args = ["700", "10", "5", "8"];
        string native = NativeRun.Run(new GuestInvocation(program) { Args = args }).StdoutText;
        var spec = new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 64, Platform = platform };
        var world = new RecordingConsole();
        // Several rounds of regions going cold and coming back before the primary dies.
        var (status, _) = InProcessFailover.Run(spec, options, world, 450, TimeSpan.FromSeconds(60), name: "cold", stillRunning: w =>
            Assert.False(w.Text.EndsWith("done\n", StringComparison.Ordinal), "the program ended before the primary died: make it run longer"));
        Assert.Equal(0, status);

        Continuity.AssertNoGapAtMostOneEpochRepeated(native, world.Text);
    }
}
