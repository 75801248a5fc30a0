using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>What a program set with prctl (its name, dumpable, no_new_privs, pdeathsig, timer slack) is still set
/// after its domain was saved and restored into a new one, several times, on each platform this machine has.</summary>
public class ProcessAttributesAcrossCheckpointsTests
{
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Prctl_attributes_stay_set_through_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("prctl"), Args = ["keep"], MemoryMiB = 32, Platform = platform };
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 2, $"only {restores} restores");
        Assert.Equal("after 1 s: name kept-name, dumpable 0, no_new_privs 1, pdeathsig 9, timer slack 1234\n", console.Text);
    }
}
