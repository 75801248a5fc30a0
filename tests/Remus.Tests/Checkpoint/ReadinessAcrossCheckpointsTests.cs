using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Pipes with buffered bytes, an eventfd counter, an armed timerfd, an epoll set (its ready list with an unconsumed
/// edge-triggered event and a disarmed one-shot), O_NONBLOCK and FD_CLOEXEC survive pauses, save/restore into a new
/// domain, live migration and Remus checkpoints: the readiness_ckpt guest prints exactly what it prints natively,
/// including after blocking in epoll_wait, read and poll while checkpoints happen. The bounds on the waits below only
/// catch a run that never ends.
/// </summary>
public class ReadinessAcrossCheckpointsTests
{
    private static readonly byte[] Config = "{\"name\":\"r\"}"u8.ToArray();
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(90);

    private static (DomainSpec Spec, string Native) Guest(params string[] args)
    {
        string program = GuestBuilder.Build("readiness_ckpt");
        var native = NativeRun.Run(new GuestInvocation(program) { Args = args });
        Assert.Equal(0, native.ExitCode);
        return (new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 32 }, native.StdoutText);
    }

    [Fact]
    public void Readiness_state_survives_a_chain_of_save_and_restore_every_100_ms()
    {
        var (spec, native) = Guest("10", "100");
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 5, $"only {restores} restores");
        Assert.Equal(native, console.Text);
    }

    [Fact]
    public void Readiness_state_and_blocked_calls_survive_pauses_every_50_ms()
    {
        var (spec, native) = Guest("10", "100");
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        int pauses = 0;
        var stop = new CancellationTokenSource();
        var pauser = new Thread(() =>
        {
            while (!stop.Token.WaitHandle.WaitOne(50))
            {
                d.Domain.Pause();
                if (d.Domain.State == DomainState.Exited) return;
                pauses++;
                d.Domain.Unpause();
            }
        }) { IsBackground = true };
        pauser.Start();
        int status;
        try { status = d.Wait(Never); }
        finally
        {
            stop.Cancel();
            pauser.Join();
        }
        Assert.Equal(0, status);
        Assert.True(pauses > 10, $"only {pauses} pauses");
        Assert.Equal(native, console.Text);
    }

    [Fact]
    public void Readiness_state_survives_remus_checkpoints_every_50_ms()
    {
        var (spec, native) = Guest("10", "100");
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(50), Timeout = TimeSpan.FromSeconds(1), Blackhole = true };
        using var primary = new RemusPrimary(d.Domain, commit, System.IO.Stream.Null, null, options);
        primary.Protect(Config);
        Assert.Equal(0, d.Wait(Never));
        Thread.Sleep(200); // the epoch loop sees the exit and releases the last output
        Assert.True(primary.Stats.Epochs > 10, $"only {primary.Stats.Epochs} epochs");
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public async Task Readiness_state_moves_with_a_live_migration()
    {
        // Long enough (3 s of ticks, then about 1.2 s of waits) that the program is still in its tick loop when moved.
        var (spec, native) = Guest("30", "100");
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(5, TimeSpan.FromSeconds(20));
        var (moved, _) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(30));
        using var _moved = moved;

        Assert.Equal(0, moved.Wait(Never));
        Assert.Equal(native, console.Text);
    }
}
