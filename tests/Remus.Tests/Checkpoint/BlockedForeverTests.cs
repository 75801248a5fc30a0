using Remus.Checkpoint;
using Remus.Sandbox;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A program blocked for ever (as it would be on Linux: a read of a pipe nobody else can write, epoll_wait, poll or
/// select on it without a timeout, a write to a full pipe nobody reads) still lets its domain pause, be saved,
/// restored (where it blocks again) and destroyed.
/// </summary>
public class BlockedForeverTests
{
    private static readonly byte[] Config = "{\"name\":\"b\"}"u8.ToArray();

    [Theory]
    [InlineData("read")]
    [InlineData("write")]
    [InlineData("poll")]
    [InlineData("select")]
    [InlineData("epoll")]
    public void A_domain_blocked_for_ever_pauses_saves_restores_and_is_destroyed(string kind)
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("pipes"), Args = ["block", kind], MemoryMiB = 32 };
        var console = new RecordingConsole();
        var first = new RunningDomain(SandboxDomain.Create(spec, console));
        var file = new MemoryStream();
        try
        {
            console.WaitForLines(1, TimeSpan.FromSeconds(30));
            Thread.Sleep(100); // into the blocking call
            first.Domain.Pause();
            Assert.Equal(DomainState.Paused, first.Domain.State);
            DomainSave.Save(first.Domain, file, Config, compress: false);
        }
        finally
        {
            first.Dispose();
        }
        Assert.Equal(137, first.Status);

        file.Position = 0;
        using var restored = new RunningDomain(DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console)));
        Thread.Sleep(200);
        Assert.NotEqual(DomainState.Exited, restored.Domain.State);
        restored.Domain.Pause();
        Assert.Equal(DomainState.Paused, restored.Domain.State);
        restored.Domain.Unpause();
        restored.Domain.Kill();
        Assert.Equal(137, restored.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal("blocking\n", console.Text);
    }
}
