using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A 4-thread counter (tests/guests/thread_counter.c: each thread prints its count and the wall clock) goes on
/// through a save and restore, and through a live migration, with every thread's count unbroken (each number once,
/// in order) and the clock never going back: every thread is captured and comes back where it was, a thread asleep
/// in nanosleep or blocked on the output mutex (a futex) included. Under Remus, a failover (the primary killed) goes
/// on on the backup the same way, the one repeat allowed being the last checkpoint's output released again, byte for
/// byte, by the backup.
/// </summary>
public sealed class ThreadContinuityTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();
    private const int ThreadCount = 4, Count = 120;

    private static DomainSpec Spec(GuestFlavor flavor, PlatformKind platform) => new()
    {
        ProgramPath = GuestBuilder.Build("thread_counter", flavor),
        Args = [ThreadCount.ToString(), Count.ToString(), "20"],
        MemoryMiB = 64,
        Platform = platform,
    };

    public static TheoryData<GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs) d.Add(f, p);
        return d;
    }

    /// <summary>Each thread printed 1..Count once and in order; the clock never went back; "done" last. With
    /// <paramref name="oneReplay"/>, one contiguous run of lines may repeat earlier lines byte for byte (a failover).</summary>
    internal static void AssertUnbroken(string text, int linesBefore, bool oneReplay = false)
    {
        var next = new int[ThreadCount];
        long lastMs = 0;
        var seen = new HashSet<string>();
        int replayRuns = 0;
        bool inReplay = false;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (oneReplay && line != "done" && !seen.Add(line))
            {
                if (!inReplay) replayRuns++;
                inReplay = true;
                Assert.True(replayRuns == 1, $"line {i}: output repeated a second time ('{line}')");
                continue;
            }
            inReplay = false;
            if (line == "done")
            {
                Assert.True(i == lines.Length - 1, $"'done' is line {i} of {lines.Length}");
                break;
            }
            var parts = line.Split(' ');
            Assert.True(parts.Length == 3 && parts[0].StartsWith('t'), $"line {i}: '{line}'");
            int t = int.Parse(parts[0][1..]), n = int.Parse(parts[1]);
            long ms = long.Parse(parts[2]);
            Assert.True(n == next[t] + 1, $"line {i} (checkpoint after {linesBefore}): thread {t} printed {n} after {next[t]}");
            Assert.True(ms >= lastMs, $"line {i} (checkpoint after {linesBefore}): the clock went back from {lastMs} to {ms}");
            next[t] = n;
            lastMs = ms;
        }
        for (int t = 0; t < ThreadCount; t++) Assert.True(next[t] == Count, $"thread {t} got to {next[t]} of {Count}");
        Assert.EndsWith("done\n", text);
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Every_thread_goes_on_after_save_and_restore(GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        var spec = Spec(flavor, platform);
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(40, TimeSpan.FromSeconds(30));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config);
        }
        int linesBefore = console.Lines;
        file.Position = 0;
        var restored = DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console));
        using var second = new RunningDomain(restored);
        int status = second.Wait(TimeSpan.FromSeconds(60));
        Assert.True(status == 0, $"exit {status}:\n{console.Text}");
        Assert.True(linesBefore < ThreadCount * Count, $"saved after {linesBefore} lines: the program had ended");
        AssertUnbroken(console.Text, linesBefore);
    }

    /// <summary>Saved and restored into a new domain every 150 ms until it ends: threads caught in every state.</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Every_thread_goes_on_through_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Threads.Require(platform);
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(Spec(GuestFlavor.Glibc, platform), console, 150);
        Assert.True(status == 0, $"exit {status} after {restores} restores:\n{console.Text}");
        Assert.True(restores >= 3, $"only {restores} restores");
        AssertUnbroken(console.Text, -restores);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Every_thread_goes_on_after_a_remus_failover(PlatformKind platform)
    {
        Threads.Require(platform);
        var spec = Spec(GuestFlavor.Glibc, platform);
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };
        var world = new RecordingConsole();
        var (status, linesBefore) = InProcessFailover.Run(spec, options, world, 60, TimeSpan.FromSeconds(30), w =>
            Assert.True(w.Lines < ThreadCount * Count, $"failed over after {w.Lines} lines: the program had ended"));
        Assert.True(status == 0, $"exit {status}:\n{world.Text}");
        AssertUnbroken(world.Text, linesBefore, oneReplay: true);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public async Task Every_thread_goes_on_after_a_live_migration(PlatformKind platform)
    {
        Threads.Require(platform);
        var spec = Spec(GuestFlavor.Glibc, platform);
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(40, TimeSpan.FromSeconds(30));
        var (moved, linesBefore) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(60));
        using var _ = moved;

        int status = moved.Wait(TimeSpan.FromSeconds(60));
        Assert.True(status == 0, $"exit {status}:\n{console.Text}");
        Assert.True(linesBefore < ThreadCount * Count, $"moved after {linesBefore} lines: the program had ended");
        AssertUnbroken(console.Text, linesBefore);
    }
}
