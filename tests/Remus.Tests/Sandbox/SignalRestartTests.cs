using Remus.Sandbox;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A sleep that a stop signal interrupts goes on after the continue for the time it had left, as Linux's
/// ERESTART_RESTARTBLOCK and restart_syscall make it: nanosleep returns 0, not EINTR, and not early.
/// </summary>
public class SignalRestartTests
{
    [Fact]
    public void A_nanosleep_stopped_by_a_timer_signal_finishes_its_time_after_the_continue()
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("sigstop"), Args = ["sleep"], MemoryMiB = 16 };
        var console = new RecordingConsole();
        var stopped = new ManualResetEventSlim();
        var domain = SandboxDomain.Create(spec, console);
        domain.Stopped += _ => stopped.Set();
        using var d = new RunningDomain(domain);
        Assert.True(stopped.Wait(TimeSpan.FromSeconds(30)), "the timer's SIGSTOP never stopped the domain");
        Assert.Equal(DomainState.Paused, d.Domain.State);
        Assert.Equal("sleeping\n", console.Text);
        d.Domain.Unpause();
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal("sleeping\nnanosleep returned 0, slept at least 300 ms yes\n", console.Text);
    }
}
