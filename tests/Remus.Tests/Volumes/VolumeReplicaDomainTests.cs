using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Volumes;

/// <summary>
/// A real domain's volume replicated through <see cref="SandboxDomain.Volumes"/> (the kernel's volume table and its
/// journal hook): a receiver that applies the bodies ends with the primary's tree — by the journal from a copied
/// start, and by copy rounds taken while the program runs (tests/guests/volumes/fileapi.c).
/// </summary>
public sealed class VolumeReplicaDomainTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private DomainSpec Spec(PlatformKind platform, string mode) => new()
    {
        ProgramPath = GuestBuilder.Build("volumes/fileapi"),
        Args = ["/work", mode],
        MemoryMiB = 64,
        Platform = platform,
        Volumes = [new VolumeSpec { HostPath = _tmp.Sub("primary"), GuestPath = "/work" }],
    };

    private void Seed()
    {
        string p = _tmp.Sub("primary");
        Directory.CreateDirectory(Path.Combine(p, "old", "deep"));
        File.WriteAllText(Path.Combine(p, "old", "deep", "kept"), "from before the copy");
        var big = new byte[(2 << 20) + 77];
        new Random(9).NextBytes(big);
        File.WriteAllBytes(Path.Combine(p, "big"), big);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void The_journal_of_a_running_program_rebuilds_its_volume_on_a_copy(PlatformKind platform)
    {
        Platforms.Require(platform);
        Seed();
        using var backupRoots = new TestVolumeRoots(_tmp.Sub("backup"));
        var receiver = new VolumeReplica(backupRoots);
        var console = new RecordingConsole();
        var domain = SandboxDomain.Create(Spec(platform, "journal"), console);
        var replica = Assert.IsAssignableFrom<IVolumeReplica>(domain.Volumes);
        replica.BeginCopy();
        replica.DrainCopy(receiver.Apply);
        replica.BeginJournal();
        using (var d = new RunningDomain(domain))
        {
            Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(120)));
            long bytes = replica.DrainJournal(b => { receiver.Validate(b); receiver.Apply(b); });
            Assert.True(bytes > 0);
            replica.StopTracking();
            Assert.Null(domain.VolumeTable.Journal);
        }
        Assert.Equal("done\n", console.Text);
        Assert.Equal(VolumeTree.Describe(_tmp.Sub("primary")), VolumeTree.Describe(_tmp.Sub("backup")));
        Assert.True(File.Exists(Path.Combine(_tmp.Sub("backup"), "t")));
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Copy_rounds_while_a_program_runs_converge_once_it_stops(PlatformKind platform)
    {
        Platforms.Require(platform);
        Seed();
        using var backupRoots = new TestVolumeRoots(_tmp.Sub("backup"));
        var receiver = new VolumeReplica(backupRoots);
        var console = new RecordingConsole();
        var domain = SandboxDomain.Create(Spec(platform, "api"), console);
        var replica = domain.Volumes!;
        replica.BeginCopy();
        using (var d = new RunningDomain(domain))
        {
            int rounds = 0;
            var done = Task.Run(() => d.Wait(TimeSpan.FromSeconds(120)));
            while (!done.IsCompleted && rounds < 1000) { replica.DrainCopy(receiver.Apply); rounds++; }
            Assert.Equal(0, done.Result);
            replica.DrainCopy(receiver.Apply);       // the last round, with the program stopped
            replica.StopTracking();
        }
        Assert.Equal(VolumeTree.Describe(_tmp.Sub("primary")), VolumeTree.Describe(_tmp.Sub("backup")));
        Assert.Equal("from before the copy", File.ReadAllText(Path.Combine(_tmp.Sub("backup"), "old", "deep", "kept")));
    }

    [Fact]
    public void A_domain_without_volumes_has_no_replica()
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("volumes/fileapi"), Args = ["/work", "api"], MemoryMiB = 64 };
        var domain = SandboxDomain.Create(spec, new RecordingConsole());
        try { Assert.Null(domain.Volumes); }
        finally { domain.Dispose(); }
    }
}
