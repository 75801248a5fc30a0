using Remus.Checkpoint.Migration;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>Live migration through the engine, over a loopback TCP channel, in process, on each platform this machine has.</summary>
public class MigrationEngineTests
{
    private static readonly byte[] Config = "{\"name\":\"m\"}"u8.ToArray();

    public static TheoryData<PlatformKind, bool> Cases()
    {
        var d = new TheoryData<PlatformKind, bool>();
        foreach (var p in Platforms.Each) { d.Add(p, true); d.Add(p, false); }
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public async Task A_running_ticker_moves_and_its_output_matches_native(PlatformKind platform, bool compress)
    {
        Platforms.Require(platform);
        string ticker = GuestBuilder.Build("ticker");
        // Long enough (3 s and more) that the program cannot end before a migration on a loaded CI machine does.
        string[] args = ["300", "10", "4"];
        var native = NativeRun.Run(new GuestInvocation(ticker) { Args = args });
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 64, Platform = platform };
        var console = new RecordingConsole();
        var (a, b) = Channel.Pair();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(5, TimeSpan.FromSeconds(20));

        SandboxDomain? arrived = null;
        var receiver = new MigrationReceiver(b, b);
        var target = Task.Run(() => arrived = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, console)));
        var sender = new MigrationSender(source.Domain, a, a, new MigrationOptions { Compress = compress });
        var rounds = new List<MigrationProgress>();
        sender.Progress += rounds.Add;
        var resultTask = Task.Run(() =>
        {
            try { return sender.Migrate(Config); }
            finally { if (!sender.HandedOver) a.Socket.Close(); } // a failed sender ends the stream, as its process would
        });
        // Either side failing shows its own error, not a timeout of the other.
        await Task.WhenAny(target, resultTask).WaitAsync(TimeSpan.FromSeconds(30));
        if (resultTask.IsFaulted) await resultTask;
        await target.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(arrived);
        using var moved = new RunningDomain(arrived!);
        receiver.ConfirmRunning();
        var result = await resultTask.WaitAsync(TimeSpan.FromSeconds(30));
        source.Domain.Kill();

        Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native.StdoutText, console.Text);
        Assert.True(result.Rounds >= 1 && result.PagesSent > 0 && result.Downtime < result.Total);
        Assert.NotEmpty(rounds);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_dead_target_leaves_the_domain_running_on_the_source(PlatformKind platform)
    {
        Platforms.Require(platform);
        string ticker = GuestBuilder.Build("ticker");
        string[] args = ["300", "10"];
        var native = NativeRun.Run(new GuestInvocation(ticker) { Args = args });
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32, Platform = platform };
        var console = new RecordingConsole();
        var (a, b) = Channel.Pair();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(3, TimeSpan.FromSeconds(20));
        b.Socket.Close(); // the target dies before anything

        var sender = new MigrationSender(source.Domain, a, a, new MigrationOptions { AckTimeout = TimeSpan.FromSeconds(5) });
        var e = Assert.Throws<MigrationException>(() => sender.Migrate(Config));
        Assert.False(sender.HandedOver);
        // Unpause returns before the vCPU thread takes it up (State reads Paused until then): the domain must be left
        // unpaused, running or already finished, never held paused.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (source.Domain.State == DomainState.Paused && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.NotEqual(DomainState.Paused, source.Domain.State);
        Assert.Equal(0, source.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native.StdoutText, console.Text);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }
}
