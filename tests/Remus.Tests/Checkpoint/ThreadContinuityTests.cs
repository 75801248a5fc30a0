using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A 4-thread counter (tests/guests/thread_counter.c: each thread prints its count and the wall clock) goes on
/// through a save and restore, and through a live migration, with every thread's count unbroken (each number once,
/// in order) and the clock never going back: every thread is captured and comes back where it was, a thread asleep
/// in nanosleep or blocked on the output mutex (a futex) included.
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

    /// <summary>Each thread printed 1..Count once and in order; the clock never went back; "done" last.</summary>
    internal static void AssertUnbroken(string text, int linesBefore)
    {
        var next = new int[ThreadCount];
        long lastMs = 0;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
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

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public async Task Every_thread_goes_on_after_a_live_migration(PlatformKind platform)
    {
        Threads.Require(platform);
        var spec = Spec(GuestFlavor.Glibc, platform);
        var console = new RecordingConsole();
        var (a, b) = Channel.Pair();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(40, TimeSpan.FromSeconds(30));

        SandboxDomain? arrived = null;
        var receiver = new MigrationReceiver(b, b);
        var target = Task.Run(() => arrived = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, console)));
        var sender = new MigrationSender(source.Domain, a, a, new MigrationOptions());
        var resultTask = Task.Run(() =>
        {
            try { return sender.Migrate(Config); }
            finally { if (!sender.HandedOver) a.Socket.Close(); }
        });
        await Task.WhenAny(target, resultTask).WaitAsync(TimeSpan.FromSeconds(60));
        if (resultTask.IsFaulted) await resultTask;
        await target.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.NotNull(arrived);
        int linesBefore = console.Lines;
        using var moved = new RunningDomain(arrived!);
        receiver.ConfirmRunning();
        await resultTask.WaitAsync(TimeSpan.FromSeconds(60));
        source.Domain.Kill();

        int status = moved.Wait(TimeSpan.FromSeconds(60));
        Assert.True(status == 0, $"exit {status}:\n{console.Text}");
        Assert.True(linesBefore < ThreadCount * Count, $"moved after {linesBefore} lines: the program had ended");
        AssertUnbroken(console.Text, linesBefore);
    }
}
