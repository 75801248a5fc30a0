using System.Text;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// Held output under protection has a bound (issue 11 item 4; OutputCommitConsole.HeldLimit, config key
/// held_output_mib): a program that writes faster than epochs are acknowledged waits for room (back-pressure) — its
/// output is never dropped, reordered or grown past the bound — and the epoch loop ends an epoch early when a writer
/// waits, so a long interval does not stall the program. Frames past the bound are dropped (packet loss).
/// </summary>
public sealed class LimitsHeldOutputTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly byte[] Config = "{\"name\":\"limits\"}"u8.ToArray();

    private sealed class FrameSink : Remus.Sandbox.Net.INetLink
    {
        public List<byte[]> Frames { get; } = [];
        public void SendFrame(ReadOnlySpan<byte> frame) => Frames.Add(frame.ToArray());
    }

    [Fact]
    public void Console_output_past_the_bound_is_refused_until_a_release_makes_room_and_none_is_lost()
    {
        const int bound = 64 << 10;
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world) { HeldLimit = bound };
        commit.StartHolding();
        var expected = new StringBuilder();
        var rnd = new Random(11);
        ulong epoch = 0;
        int line = 0, refusals = 0;
        var pending = ""u8.ToArray();
        while (line < 40000 || pending.Length > 0)
        {
            if (pending.Length == 0)
            {
                var text = new StringBuilder();
                for (int i = rnd.Next(1, 400); i > 0; i--) text.Append(line++).Append(" abcdefghijklmnopqrstuvwxyz\n");
                pending = Encoding.ASCII.GetBytes(text.ToString());
                expected.Append(text);
            }
            int n = commit.TryWrite(1, pending);
            Assert.InRange(commit.HeldBytes, 0, bound);
            pending = pending[n..];
            if (pending.Length == 0) continue;
            refusals++;
            Assert.False(commit.CanWrite && n == 0, "a console that refused everything says it can take output");
            // As the epoch loop would: seal (pressure says so), then the ack releases it.
            Assert.True(commit.Pressure.WaitOne(0), "a refused write with output in the open epoch sets Pressure");
            commit.SealEpoch(epoch);
            commit.Release(epoch++);
        }
        commit.StopHolding();
        Assert.True(refusals > 10, $"only {refusals} refusals: the test did not reach the bound");
        Assert.InRange(commit.PeakHeldBytes, bound / 2, bound);
        Assert.Equal(expected.ToString(), world.Text);
    }

    [Fact]
    public void Frames_past_the_bound_are_dropped_as_packet_loss_not_held()
    {
        const int bound = 64 << 10;
        var wire = new FrameSink();
        var commit = new OutputCommitConsole(new RecordingConsole()) { HeldLimit = bound, Wire = wire };
        commit.StartHolding();
        var frame = new byte[1514];
        for (int i = 0; i < 100; i++)
        {
            frame[0] = (byte)i;
            commit.Frames.SendFrame(frame);
            Assert.InRange(commit.HeldBytes, 0, bound);
        }
        int kept = bound / (1514 + 8);
        Assert.Equal(100 - kept, commit.FramesDroppedOverBound);
        Assert.Equal(100 - kept, commit.NetStats.FramesOverBound);
        commit.SealEpoch(0);
        commit.Release(0);
        Assert.Equal(Enumerable.Range(0, kept).Select(i => (byte)i), wire.Frames.Select(f => f[0]));
    }

    /// <summary>
    /// A protected program floods its console while the backup's acks are withheld (a slow backup): held output
    /// reaches the bound and the program waits; once acks flow, all of its output reaches the world, in order, exactly
    /// once, and the most ever held stayed within the bound. Without the bound the flood is held whole (red).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_flood_while_acks_are_late_waits_at_the_bound_and_loses_nothing(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int bound = 256 << 10, kib = 4096;
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("exhaust"), Args = ["console", $"{kib}"], MemoryMiB = 64, Platform = platform };
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(30) };
        var world = new GatedInputConsole();
        var commit = new OutputCommitConsole(world) { HeldLimit = bound };
        var (a, b) = Checkpoint.Channel.Pair();
        var gate = new GatedAcks(a);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, gate, options);
        string? lost = null;
        primary.Unprotected += r => lost = r;
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);

        gate.Withhold();
        try
        {
            world.Go();
            LimitsSupport.WaitUntil(() => commit.WritesHeldBack > 0 || commit.PeakHeldBytes > bound || d.Domain.State == DomainState.Exited,
                "the flood fills the held output");
            Assert.True(commit.PeakHeldBytes <= bound, $"{commit.PeakHeldBytes} bytes held while acks were withheld, past the bound of {bound}");
            Assert.True(world.Bytes == 0, $"{world.Bytes} bytes reached the world while acks were withheld");
        }
        finally
        {
            gate.Open();
        }
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(300)));
        var expected = LimitsSupport.ConsoleFlood(kib);
        LimitsSupport.WaitUntil(() => world.Bytes >= expected.Length, "the last epoch's output is released");
        Assert.True(lost is null, $"protection was lost: {lost}");
        var text = world.Text;
        Assert.True(text == expected, LimitsSupport.FirstDifference(expected, text));
        Assert.True(commit.PeakHeldBytes <= bound, $"{commit.PeakHeldBytes} bytes held at most, past the bound of {bound}");
        Assert.True(commit.WritesHeldBack > 0, "the program never waited: the bound was not reached");
        output.WriteLine($"{Platforms.Name(platform)}: {expected.Length} bytes in {primary.Stats.Epochs} epochs, at most {commit.PeakHeldBytes} held (bound {bound}), {commit.WritesHeldBack} writes waited");
        Assert.True(watch.Wait(TimeSpan.FromSeconds(30)), "the backup did not end after the program's end");
        backup.Domain?.Dispose();
    }

    /// <summary>
    /// With an interval far longer than the test, only the early end of an epoch (the epoch loop waking on the
    /// console's pressure) lets a flood bigger than the bound through: without it the program waits for the interval.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_writer_waiting_at_the_bound_ends_the_epoch_early(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int bound = 128 << 10, kib = 1024;
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("exhaust"), Args = ["console", $"{kib}"], MemoryMiB = 32, Platform = platform };
        var options = new RemusOptions { Interval = TimeSpan.FromHours(1), Timeout = TimeSpan.FromSeconds(30) };
        var world = new GatedInputConsole();
        var commit = new OutputCommitConsole(world) { HeldLimit = bound };
        var (a, b) = Checkpoint.Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(d.Domain, commit, a, a, options);
        string? lost = null;
        primary.Unprotected += r => lost = r;
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        try
        {
            primary.Protect(Config);
            world.Go();
            LimitsSupport.WaitUntil(() => d.Domain.State == DomainState.Exited, "the flood ends (epochs ended early as the writer waited)", 240);
            Assert.True(lost is null, $"protection was lost: {lost}");
        }
        finally
        {
            primary.Dispose(); // the exit is noticed at the next epoch, an hour away: ending protection sends it now
        }
        var expected = LimitsSupport.ConsoleFlood(kib);
        Assert.True(world.Text == expected, LimitsSupport.FirstDifference(expected, world.Text));
        Assert.True(commit.PeakHeldBytes <= bound, $"{commit.PeakHeldBytes} bytes held at most, past the bound of {bound}");
        output.WriteLine($"{Platforms.Name(platform)}: {expected.Length} bytes with a 1 h interval in {primary.Stats.Epochs} epochs, at most {commit.PeakHeldBytes} held (bound {bound}), {commit.WritesHeldBack} writes waited");
        Assert.True(watch.Wait(TimeSpan.FromSeconds(30)), "the backup did not end after the program's end");
        backup.Domain?.Dispose();
    }

    /// <summary>
    /// The primary dies in the middle of a flood that keeps its writer waiting at the bound (so its checkpoints catch
    /// the write half done, its progress in the kernel state): the backup takes over and the program's output goes
    /// on with no gap, at most the last epoch's output twice, and the backup's copy finishes the interrupted write.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Failover_in_the_middle_of_a_write_waiting_at_the_bound_loses_nothing(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int bound = 128 << 10, kib = 8192;
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("exhaust"), Args = ["console", $"{kib}"], MemoryMiB = 64, Platform = platform };
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(2) };
        var world = new GatedInputConsole();
        var primaryView = new SeverableConsole(world);
        var commit = new OutputCommitConsole(primaryView) { HeldLimit = bound };
        var (a, b) = Checkpoint.Channel.Pair();
        var primaryDomain = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(primaryDomain.Domain, commit, a, a, options);
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, world)));
        primary.Protect(Config);
        world.Go();
        LimitsSupport.WaitUntil(() => world.Bytes > 1 << 20 && commit.WritesHeldBack > 4, "a megabyte is out and the writer has waited");

        primaryView.Sever();
        primaryDomain.Domain.Kill();
        a.Socket.Close();
        Assert.False(primaryDomain.Domain.State == DomainState.Exited && world.Text.EndsWith("console done\n", StringComparison.Ordinal),
            "the flood ended before the primary died: make it longer");
        Assert.Equal(BackupOutcome.Failover, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException());
        backup.ReplayLastOutput(world);
        using var takeover = new RunningDomain((SandboxDomain)backup.Domain!);
        Assert.Equal(0, takeover.Wait(TimeSpan.FromSeconds(120)));
        primary.Dispose();
        primaryDomain.Dispose();

        int repeated = LimitsSupport.AssertNoGapAtMostOneEpochRepeated(LimitsSupport.ConsoleFlood(kib), world.Text, bound);
        Assert.True(commit.PeakHeldBytes <= bound, $"{commit.PeakHeldBytes} bytes held at most, past the bound of {bound}");
        output.WriteLine($"{Platforms.Name(platform)}: {repeated} bytes re-emitted at the failover; the primary's writer waited {commit.WritesHeldBack} times");
    }
}
