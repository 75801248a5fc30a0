using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// One Remus failover in process, as the failover tests stage it: a domain protected to a backup over loopback, the
/// primary killed once the world has seen some lines, the backup taking over and its domain running to the end.
/// </summary>
public static class InProcessFailover
{
    /// <summary>
    /// Protects <paramref name="spec"/>'s domain, waits for <paramref name="lines"/> lines, then kills the primary: its
    /// console is severed first (nothing it still holds reaches the world), its domain stops, its connection drops.
    /// <paramref name="stillRunning"/> judges the output at that moment (the program must not have ended yet). Then
    /// the backup must take over, replay its last released output and run the domain to its end.
    /// Returns the exit status of the domain on the backup and the lines the world had seen when the primary died.
    /// </summary>
    public static (int Status, int LinesAtKill) Run(DomainSpec spec, RemusOptions options, RecordingConsole world,
        int lines, TimeSpan linesWithin, Action<RecordingConsole> stillRunning, string name = "failover")
    {
        var primaryView = new SeverableConsole(world);
        var commit = new OutputCommitConsole(primaryView);
        var (a, b) = Channel.Pair();
        var primaryDomain = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(primaryDomain.Domain, commit, a, a, options);
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, world)));
        primary.Protect(System.Text.Encoding.UTF8.GetBytes($"{{\"name\":\"{name}\"}}"));
        world.WaitForLines(lines, linesWithin);

        primaryView.Sever();
        primaryDomain.Domain.Kill();
        a.Socket.Close();
        int linesAtKill = world.Lines;
        stillRunning(world);
        Assert.Equal(BackupOutcome.Failover, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException());
        backup.ReplayLastOutput(world);
        using var takeover = new RunningDomain((SandboxDomain)backup.Domain!);
        int status = takeover.Wait(TimeSpan.FromSeconds(60));
        primary.Dispose();
        primaryDomain.Dispose();
        return (status, linesAtKill);
    }
}
