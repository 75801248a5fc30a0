using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Output commit through the engine with the backup's acknowledgements withheld: while no ack can reach the primary,
/// nothing the program prints may reach the world; once they flow again, everything does, in order.
/// </summary>
public class AckWithholdingTests
{
    private static readonly byte[] Config = "{\"name\":\"w\"}"u8.ToArray();

    /// <summary>
    /// Acks are withheld for a while (well under the ack timeout). Every line that reaches the world while they are
    /// withheld must have been printed before the gate closed (an epoch acked just before may still be released);
    /// any line stamped later would be output released without its checkpoint on the backup. The check is on the
    /// guest's own clock stamps, not on how long anything took. After the gate opens, the lines printed meanwhile
    /// arrive, and the whole output has every counter exactly once.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void While_acks_are_withheld_nothing_printed_since_reaches_the_world(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int count = 2500; // 5 s or more: still running after a slow initial sync and the hold
        var tick = TimeSpan.FromMilliseconds(2);
        var spec = new DomainSpec { ProgramPath = NonceTicker.Program, Args = NonceTicker.Args(count, tick), MemoryMiB = 32, Platform = platform };
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(20) };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        var gate = new GatedAcks(a);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, gate, options);
        string? lost = null;
        primary.Unprotected += r => lost = r;
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        world.WaitForLines(50, TimeSpan.FromSeconds(30));

        gate.Withhold();
        long closedAt = RealtimeNs();
        int linesAtClose = world.Lines, linesAtOpen;
        try
        {
            // Hold for a while and look at the world repeatedly; the length of the hold is no assertion.
            for (int i = 0; i < 20; i++)
            {
                Thread.Sleep(50);
                AssertNothingStampedAfter(world.Text, closedAt, "while acks were withheld");
            }
            linesAtOpen = world.Lines;
            Assert.False(d.Domain.State == DomainState.Exited, "the program ended while acks were withheld: make it run longer");
            Assert.True(primary.IsProtected, $"protection was lost while acks were withheld: {lost}");
        }
        finally
        {
            gate.Open(); // also on failure: the primary's loop waits for an ack with a long timeout
        }

        // The lines printed during the hold were held, not lost: they arrive now.
        WaitUntil(() => NonceTicker.Parse(world.Text).Any(t => t.RealtimeNs > closedAt), "a line printed after the gate closed reaches the world");
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(60)));
        WaitUntil(() => world.Text.EndsWith("done\n", StringComparison.Ordinal), "the last epoch's output is released after the program's end");
        Assert.True(lost is null, $"protection was lost: {lost}");
        NonceTicker.AssertReleasedOutput(world.Text, count, maxRepeated: 0,
            $"{linesAtClose} lines when the gate closed, {linesAtOpen} when it opened");
        Assert.True(watch.Wait(TimeSpan.FromSeconds(20)), "the backup did not end after the program's end");
        backup.Domain?.Dispose();
    }

    internal static long RealtimeNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>Fails, showing the line, if any released line carries a clock stamp later than <paramref name="ns"/>.</summary>
    internal static void AssertNothingStampedAfter(string released, long ns, string when)
    {
        foreach (var t in NonceTicker.Parse(released, allowPartialLastLine: true))
            if (t.RealtimeNs > ns)
                throw new Xunit.Sdk.XunitException($"{when}, a line printed {(t.RealtimeNs - ns) / 1e6:F1} ms after the acks stopped was released: '{t.Line}'");
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            Thread.Sleep(10);
        }
    }
}
