using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Signal state survives checkpoints: a periodic itimer keeps ticking, a blocked signal stays pending with its
/// siginfo, the alternate stack and dispositions stay set, and a POSIX timer keeps its deadline (the guest checks it
/// against its monotonic clock) through a chain of save/restore into new domains and under Remus protection.
/// The program's output must be exactly its native output.
/// </summary>
public class SignalsAcrossCheckpointsTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();

    private static (DomainSpec Spec, string Native) Sigckpt(int ticks)
    {
        string program = GuestBuilder.Build("sigckpt");
        string[] args = [ticks.ToString()];
        var native = NativeRun.Run(new GuestInvocation(program) { Args = args });
        Assert.Equal(0, native.ExitCode);
        return (new DomainSpec { ProgramPath = program, Args = args, MemoryMiB = 32 }, native.StdoutText);
    }

    [Fact]
    public void Timers_and_pending_signals_continue_through_a_chain_of_save_and_restore()
    {
        var (spec, native) = Sigckpt(60);
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 3, $"only {restores} restores");
        Assert.Equal(native, console.Text);
    }

    [Fact]
    public void Timers_and_pending_signals_continue_under_remus_protection_with_a_20_ms_interval()
    {
        var (spec, native) = Sigckpt(60);
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1), Blackhole = true };
        using var primary = new RemusPrimary(d.Domain, commit, System.IO.Stream.Null, null, options);
        primary.Protect(Config);
        int status = d.Wait(TimeSpan.FromSeconds(90));
        Assert.Equal(0, status);
        Assert.True(primary.Stats.Epochs > 10, $"only {primary.Stats.Epochs} epochs");
        Thread.Sleep(200); // the epoch loop sees the exit and releases the last output
        Assert.Equal(native, world.Text);
    }
}
