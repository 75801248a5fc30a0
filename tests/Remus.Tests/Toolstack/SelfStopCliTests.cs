using Remus.Tests.Support;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// A program that stops itself (SIGSTOP) in a detached domain: `remus list` shows the domain paused, nothing runs,
/// and `remus unpause` continues it as SIGCONT would (issue 15 finding 8c, through the toolstack).
/// </summary>
public sealed class SelfStopCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Fact]
    public void A_program_that_stops_itself_is_listed_paused_and_unpause_continues_it()
    {
        string config = _bed.Config("stopper.toml", $"""
            name = "stopper"
            memory = 32
            program = "{GuestBuilder.Build("sigstop")}"
            console_log = "console.log"
            """);
        _bed.Ok("create", config);
        DomainTestBed.WaitUntil(() => _bed.ReadLog("console.log").Contains("before the stop"), "the program prints its first line");
        DomainTestBed.WaitUntil(() => _bed.Domain("stopper").State == DomainRunState.Paused, "the domain is listed paused after SIGSTOP");
        Thread.Sleep(300);
        Assert.DoesNotContain("continued after SIGSTOP", _bed.ReadLog("console.log"));

        _bed.Ok("unpause", "stopper");
        DomainTestBed.WaitUntil(() => _bed.ReadLog("console.log").Contains("continued after SIGSTOP"), "unpause continues the stopped program");
        // It stops once more (SIGTSTP), and is continued again.
        DomainTestBed.WaitUntil(() => _bed.Domain("stopper").State == DomainRunState.Paused, "the domain is paused again after SIGTSTP");
        _bed.Ok("unpause", "stopper");
        DomainTestBed.WaitUntil(() => _bed.ReadLog("console.log").Contains("an ignored SIGTSTP does not stop"), "the program runs to its end");
    }
}
