using Remus.Checkpoint;
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

    private void Seed() => Seed(_tmp.Sub("primary"));

    private static void Seed(string p)
    {
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

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Save_and_restore_carry_the_volume_and_commit_puts_the_copy_in_place(PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("volumes/fileapi");
        Directory.CreateDirectory(_tmp.Sub("native"));
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [_tmp.Sub("native"), "ckpt", "40"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        string dir = _tmp.Sub("primary");
        var spec = Spec(platform, "ckpt") with { Args = ["/work", "ckpt", "40"] };
        var console = new RecordingConsole();
        var current = new RunningDomain(SandboxDomain.Create(spec, console));
        int restores = 0;
        try
        {
            while (true)
            {
                Thread.Sleep(60);
                current.Domain.Pause();
                if (current.Domain.State == DomainState.Exited) break;
                Assert.True(restores < 500, "the program does not end");
                var file = new MemoryStream();
                DomainSave.Save(current.Domain, file, "{}"u8.ToArray(), compress: true);
                current.Dispose();
                file.Position = 0;
                current = new RunningDomain(DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console)));
                restores++;
            }
            Assert.Equal(0, current.Wait(TimeSpan.FromSeconds(120)));
            var said = new List<string>();
            current.Domain.Volumes!.Commit(TimeSpan.FromSeconds(10), said.Add);
            Assert.Single(said);
        }
        finally
        {
            current.Dispose();
        }
        Assert.True(restores >= 2, $"only {restores} restores");
        Assert.Equal(native.StdoutText, console.Text);
        Assert.True(File.Exists(Path.Combine(dir, "log")));
        Assert.False(Directory.Exists(VolumeStaging.StagingPath(dir)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("native"), "log")), File.ReadAllBytes(Path.Combine(dir, "log")));
        Assert.True(Directory.Exists(dir + VolumeCommit.PreviousSuffix));
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public async Task A_live_migration_moves_the_volume_in_copy_rounds_and_the_target_commits_it(PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("volumes/fileapi");
        Seed(_tmp.Sub("native"));
        // 400 writes 10 ms apart: the program must still run when the copy rounds end (60 ended first once on KVM in CI)
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [_tmp.Sub("native"), "ckpt", "400"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        Seed();
        string dir = _tmp.Sub("primary");
        var spec = Spec(platform, "ckpt") with { Args = ["/work", "ckpt", "400"] };
        var console = new RecordingConsole();
        var source = new RunningDomain(SandboxDomain.Create(spec, console));
        RunningDomain? moved = null;
        try
        {
            console.WaitForLines(5, TimeSpan.FromSeconds(60));
            (moved, _) = await LiveMigration.MoveAsync(source, spec, console, "{}"u8.ToArray(), TimeSpan.FromSeconds(120));
            source.Dispose();                                  // the source VMM ends: its lock on the volume goes
            var said = new List<string>();
            moved.Domain.Volumes!.Commit(TimeSpan.FromSeconds(30), said.Add);
            Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(120)));
            Assert.Single(said);
        }
        finally
        {
            moved?.Dispose();
            source.Dispose();
        }
        Assert.Equal(native.StdoutText, console.Text);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("native"), "log")), File.ReadAllBytes(Path.Combine(dir, "log")));
        Assert.Equal("from before the copy", File.ReadAllText(Path.Combine(dir, "old", "deep", "kept")));
        Assert.True(File.Exists(Path.Combine(dir + VolumeCommit.PreviousSuffix, "log")));
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
