using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A domain being restored learns which frames the stream wrote (the restore's ledger of page tables and its release
/// of frames no table holds depend on it), whichever way a page arrives: through <see cref="SandboxDomain.WritablePage"/>
/// (small epochs, XOR deltas) or in a run through the memfd (<see cref="SandboxDomain.WritePages"/>, large epochs).
/// On each platform this machine has.
/// </summary>
public class WritePagesNotingTests
{
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Pages_written_in_runs_are_noted_for_the_restore_as_pages_written_one_by_one(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("ticker"), MemoryMiB = 32, Platform = platform };
        using var d = SandboxDomain.CreateIncoming(spec, new RecordingConsole());
        Skip.IfNot(d.AddressSpace.Paged, "this platform runs the identity model: the restore keeps no such notes");
        ulong first = SandboxDomain.FirstPage + 100;
        var data = new byte[3 * (int)GuestMemory.PageSize];
        data.AsSpan().Fill(0x5a);
        d.WritePages(first, data);
        d.WritablePage(first + 10)[0] = 1;
        for (ulong pfn = first; pfn < first + 3; pfn++) Assert.True(d.AddressSpace.RestoreWriteNoted(pfn), $"page 0x{pfn:x} of the run was not noted");
        Assert.True(d.AddressSpace.RestoreWriteNoted(first + 10));
        Assert.False(d.AddressSpace.RestoreWriteNoted(first + 3), "a page nobody wrote was noted");
        Assert.Equal(0x5a, d.ReadPage(first + 2)[4095]);
    }
}
