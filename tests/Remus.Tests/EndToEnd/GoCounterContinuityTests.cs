using System.Diagnostics;
using System.Globalization;
using Remus.Checkpoint.Migration;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Runtimes;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Issue 8's "done when": a running 4-goroutine Go counter (tests/guests/go/counter.go, built with Debian's go,
/// CGO_ENABLED=0: each goroutine prints "g G n N t UNIX_NS" every INTERVAL_MS) keeps an unbroken count through a live
/// migration and through a Remus failover after SIGKILL of the primary VMM, on every platform. (Save/restore: a chain
/// of them in <see cref="GoRustTests"/>.) Each line carries the wall clock, so a line the backup re-executed differs
/// from the one the primary released: only the backup's replay of the last epoch's output may repeat lines, byte for
/// byte, in one run.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class GoCounterContinuityTests : IDisposable
{
    private static readonly byte[] Config = "{\"name\":\"go\"}"u8.ToArray();
    private const int Count = 150, IntervalMs = 20;

    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
    }

    private static string Counter() => RuntimeBuilder.Build(RuntimeLanguage.Go, "counter");

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public async Task Every_goroutine_counts_on_unbroken_after_a_live_migration(PlatformKind platform)
    {
        Platforms.Require(platform);
        RuntimeBuilder.Require(RuntimeLanguage.Go);
        var spec = new DomainSpec
        {
            ProgramPath = Counter(), Args = [Count.ToString(CultureInfo.InvariantCulture), IntervalMs.ToString(CultureInfo.InvariantCulture)],
            MemoryMiB = 256, Platform = platform,
        };
        var console = new RecordingConsole();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(40, TimeSpan.FromSeconds(60));
        var (moved, linesBefore) = await LiveMigration.MoveAsync(source, spec, console, Config, TimeSpan.FromSeconds(120));
        using var _ = moved;

        int status = moved.Wait(TimeSpan.FromSeconds(120));
        Assert.True(status == 0, $"exit {status}:\n{console.Text}");
        Assert.True(linesBefore < 4 * Count, $"moved after {linesBefore} lines: the program had ended");
        AssertUnbroken(console.Text, $"migrated after {linesBefore} lines", oneReplay: false);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Every_goroutine_counts_on_unbroken_after_the_primary_VMM_is_killed_under_Remus(PlatformKind platform)
    {
        Platforms.Require(platform);
        RuntimeBuilder.Require(RuntimeLanguage.Go);
        string log = Path.Combine(_primary.Work, "go.log"); // both hosts write here: the combined console
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work);
        string config = _primary.Config("go.toml", $"""
            name = "go"
            memory = 256
            program = "{Counter()}"
            args = ["{Count}", "{IntervalMs}"]
            console_log = "{log}"
            {E2E.PlatformLine(platform)}
            """);
        string Details() => $"{backup.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";
        int vmm = E2E.VmmPid(_primary.Ok("create", config));
        var protect = _primary.Remus(["protect", "-i", "50", "--tcp", $"127.0.0.1:{port}", "--insecure", "go"], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details()}");
        E2E.WaitUntil(() => E2E.Lines(log) >= 40, "40 lines of released output", TimeSpan.FromSeconds(60), Details);

        int atKill = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), "the program ended before the kill: make it run longer");
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the primary VMM {vmm} survived SIGKILL");

        backup.WaitForStderr("Remus failover for domain go", TimeSpan.FromSeconds(30));
        int status = backup.WaitForExit(TimeSpan.FromSeconds(120), () => $"console_log has {E2E.Lines(log)} lines\n{Details()}");
        Assert.True(status == 0, $"the backup's domain ended with status {status}\n{Details()}");
        AssertUnbroken(E2E.ReadText(log), $"killed with {atKill} lines out\n{Details()}", oneReplay: true);
    }

    /// <summary>Every goroutine printed 1..Count once and in order, its clock never going back, then "done"; with
    /// <paramref name="oneReplay"/> one contiguous run of lines may repeat earlier lines byte for byte.</summary>
    private static void AssertUnbroken(string text, string context, bool oneReplay)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0 && lines[^1] == "done", $"the output does not end with 'done' ({context})");
        var seen = new HashSet<string>();
        var fresh = new List<string>();
        int replayRuns = 0;
        bool inReplay = false;
        foreach (var line in lines[..^1])
        {
            if (!seen.Add(line))
            {
                Assert.True(oneReplay, $"line repeated: '{line}' ({context})");
                if (!inReplay) replayRuns++;
                inReplay = true;
                Assert.True(replayRuns == 1, $"output repeated a second time at '{line}' ({context})");
                continue;
            }
            inReplay = false;
            fresh.Add(line);
        }
        var counts = CounterLines.Parse(fresh);
        for (int g = 0; g < 4; g++)
            Assert.True(counts[g].SequenceEqual(Enumerable.Range(1, Count).Select(i => (long)i)),
                $"goroutine {g} counted {string.Join(",", counts[g])} ({context})");
        CounterLines.AssertClocksNeverGoBack(fresh);
    }
}
