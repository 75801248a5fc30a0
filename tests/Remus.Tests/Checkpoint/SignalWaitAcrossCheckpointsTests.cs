using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// rt_sigtimedwait keeps its deadline when the domain is paused or saved and restored meanwhile: the wait is
/// restarted with the time that was left (Deadlines.cs), so it ends as natively instead of starting over at every
/// pause (which, paused every 50 ms, would never end). On each platform this machine has.
/// </summary>
public class SignalWaitAcrossCheckpointsTests
{
    private const string Expected = "waited 1 s for SIGUSR1: -1 Resource temporarily unavailable, at least 1 s: yes\n";

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_sigtimedwait_timeout_ends_although_the_domain_is_paused_every_50_ms(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("sigtimedwait"), Args = ["wait", "1"], MemoryMiB = 32, Platform = platform };
        var native = NativeRun.Run(new GuestInvocation(spec.ProgramPath) { Args = spec.Args });
        Assert.Equal(Expected, native.StdoutText);
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        int pauses = 0;
        using var stop = new CancellationTokenSource();
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
        try { status = d.Wait(TimeSpan.FromSeconds(90)); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException($"the wait never timed out ({pauses} pauses); output so far:\n{console.Text}"); }
        finally
        {
            stop.Cancel();
            pauser.Join();
        }
        Assert.Equal(0, status);
        Assert.True(pauses > 10, $"only {pauses} pauses");
        Assert.Equal(Expected, console.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_sigtimedwait_timeout_ends_although_the_domain_is_saved_and_restored_every_100_ms(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("sigtimedwait"), Args = ["wait", "1"], MemoryMiB = 32, Platform = platform };
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 100);
        Assert.Equal(0, status);
        Assert.True(restores > 5, $"only {restores} restores");
        Assert.Equal(Expected, console.Text);
    }
}
