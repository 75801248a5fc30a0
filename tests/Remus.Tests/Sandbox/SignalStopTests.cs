using Remus.Sandbox;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A program that stops itself (SIGSTOP, SIGTSTP with the default action) stops as on Linux: with no shell to
/// continue it, the domain becomes paused, and unpausing it (the SIGCONT) lets the stopping call return 0.
/// </summary>
public class SignalStopTests
{
    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited in vain for {what}");
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void A_program_that_stops_itself_pauses_its_domain_until_unpaused()
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("sigstop"), MemoryMiB = 16 };
        var console = new RecordingConsole();
        var domain = SandboxDomain.Create(spec, console);
        var stops = new List<(int Signal, DomainState State)>();
        domain.Stopped += sig => { lock (stops) stops.Add((sig, domain.State)); }; // before it runs: the first stop comes at once
        using var d = new RunningDomain(domain);

        WaitFor(() => d.Domain.State is DomainState.Paused or DomainState.Exited, "the SIGSTOP");
        Assert.Equal(DomainState.Paused, d.Domain.State);
        Assert.Equal("before the stop\n", console.Text);
        Thread.Sleep(100); // stopped means stopped: nothing more comes while paused
        Assert.Equal("before the stop\n", console.Text);

        d.Domain.Unpause();
        WaitFor(() => console.Lines >= 2 && d.Domain.State is DomainState.Paused or DomainState.Exited, "the SIGTSTP");
        Assert.Equal(DomainState.Paused, d.Domain.State);
        Assert.Equal("before the stop\ncontinued after SIGSTOP, kill returned 0\n", console.Text);

        d.Domain.Unpause();
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal("before the stop\ncontinued after SIGSTOP, kill returned 0\ncontinued after SIGTSTP, raise returned 0\n"
            + "an ignored SIGTSTP does not stop, raise returned 0\n", console.Text);
        lock (stops) Assert.Equal([(19, DomainState.Paused), (20, DomainState.Paused)], stops);
    }

    [Fact]
    public void A_stopped_program_can_be_killed()
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("sigstop"), MemoryMiB = 16 };
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        WaitFor(() => d.Domain.State is DomainState.Paused or DomainState.Exited, "the SIGSTOP");
        Assert.Equal(DomainState.Paused, d.Domain.State);
        d.Domain.Kill();
        Assert.Equal(137, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal("before the stop\n", console.Text);
    }
}
