using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Volumes;

/// <summary>
/// Remus in process with the real replica: the primary's volume reaches the backup's staging copy by the initial
/// copy and then each epoch's journal; after the primary dies the backup's program goes on from its copy, ends with
/// the file a native run writes, and Commit puts the copy at the volume's host path.
/// </summary>
public sealed class VolumeFailoverTests : IDisposable
{
    private static readonly RemusOptions Fast = new() { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void After_a_failover_the_backup_continues_from_its_copy_of_the_volume(PlatformKind platform)
    {
        Platforms.Require(platform);
        string program = GuestBuilder.Build("volumes/fileapi");
        const int count = 300;
        Directory.CreateDirectory(_tmp.Sub("native"));
        var native = NativeRun.Run(new GuestInvocation(program) { Args = [_tmp.Sub("native"), "ckpt", $"{count}"] });
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        string dir = _tmp.Sub("primary");
        var spec = new DomainSpec
        {
            ProgramPath = program, Args = ["/work", "ckpt", $"{count}"], MemoryMiB = 64, Platform = platform,
            Volumes = [new VolumeSpec { HostPath = dir, GuestPath = "/work" }],
        };
        var world = new RecordingConsole();
        var primaryView = new SeverableConsole(world);
        var commit = new OutputCommitConsole(primaryView);
        var (a, b) = Channel.Pair();
        var primaryDomain = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(primaryDomain.Domain, commit, a, a, Fast);
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, world)));
        primary.Protect("{}"u8.ToArray());
        world.WaitForLines(40, TimeSpan.FromSeconds(60));

        primaryView.Sever();
        primaryDomain.Domain.Kill();
        a.Socket.Close();
        Assert.False(world.Text.Contains("read back", StringComparison.Ordinal), "the program ended before the primary died: make it run longer");
        Assert.Equal(BackupOutcome.Failover, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException());
        backup.ReplayLastOutput(world);
        var takeover = (SandboxDomain)backup.Domain!;
        primary.Dispose();
        primaryDomain.Dispose();                                  // the dead primary's lock on the volume goes
        using (var running = new RunningDomain(takeover))
        {
            var said = new List<string>();
            takeover.Volumes!.Commit(TimeSpan.FromSeconds(30), said.Add);
            Assert.Equal(0, running.Wait(TimeSpan.FromSeconds(120)));
            Assert.Single(said);
        }

        string[] nativeLines = native.StdoutText.TrimEnd('\n').Split('\n');
        string[] lines = world.Text.TrimEnd('\n').Split('\n');
        Assert.Equal(nativeLines[^2..], lines[^2..]);                            // the checksum of the file it read back
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("native"), "log")), File.ReadAllBytes(Path.Combine(dir, "log")));
        Assert.False(Directory.Exists(VolumeStaging.StagingPath(dir)));
        Assert.True(Directory.Exists(dir + VolumeCommit.PreviousSuffix));      // what the primary had got to, kept aside
    }
}
