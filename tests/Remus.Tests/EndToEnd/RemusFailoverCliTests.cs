using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Remus.Checkpoint.Stream;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// `remus protect` and `remus migrate-receive -r` through the real CLI, with the primary and the backup as two
/// "hosts" (two run directories) sharing one console_log path, so that the file holds the combined console: what
/// the primary released, then what the backup printed after the failover. The guarantee checked (DESIGN.md §5):
/// no line lost, none altered, at most the last epoch's lines repeated once. The failover rounds and the plain
/// protection runs go on each platform this machine has (config key <c>platform</c>; the backup takes the platform
/// the stream names); the tests of lost or stopped backups and of a primary lost early are about the protocol and
/// run once, on whatever the machine picks.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class RemusFailoverCliTests : IDisposable
{
    private const int Count = 600, Interval = 10, Mib = 1;

    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
    }

    private string Details(Receiver? receiver) => $"{receiver?.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";

    /// <summary>Creates the ticker at the primary and runs `remus protect PROTECTOPTIONS NAME`; returns the VMM pid.</summary>
    private int CreateProtected(string name, string log, string[] protectOptions, Receiver? receiver, PlatformKind? platform = null) =>
        CreateProtectedFrom(Ticker.Config(_primary, name, Count, Interval, Mib, log, platform: platform), name, protectOptions, receiver);

    /// <summary>Creates the domain of <paramref name="config"/> at the primary and protects it; returns the VMM pid.</summary>
    private int CreateProtectedFrom(string config, string name, string[] protectOptions, Receiver? receiver)
    {
        int vmm = E2E.VmmPid(_primary.Ok("create", config));
        var protect = _primary.Remus(["protect", .. protectOptions, name], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(receiver)}");
        Assert.Contains($"domain '{name}' is protected", protect.StdoutText);
        return vmm;
    }

    /// <summary>`list --json` at the primary: the domain is running, protected, and has made checkpoints.</summary>
    private RemusDomainInfo AssertProtected(string name, int vmm)
    {
        var info = E2E.Single(_primary, name);
        Assert.Equal(vmm, info.Pid);
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.True(info.Remus is not null, $"list --json shows no 'remus' object for the protected domain '{name}'");
        Assert.True(info.Remus.Protected, $"remus.protected is false: lost because {info.Remus.Lost}");
        Assert.True(info.Remus.Epochs > 0, $"no checkpoint yet: {JsonSerializer.Serialize(info.Remus)}");
        Assert.True(info.Remus.BytesPerEpoch > 0, $"bytes_per_epoch is 0: {JsonSerializer.Serialize(info.Remus)}");
        return info.Remus;
    }

    /// <summary>
    /// The headline test: the primary VMM is SIGKILLed at a random moment; the backup fails over. The guest prints a
    /// clock value and random bytes with each counter, so a re-executed line differs from the released one: the
    /// combined console must have every counter, in order, once, except one epoch's lines re-emitted byte for byte.
    /// Checkpoints are sent with `-u` here; the compressed variant below covers the XOR+LZ4 path (it caught a
    /// page-cache race once).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(FailoverSeeds))]
    public void The_primary_VMM_killed_at_a_random_moment_fails_over_with_no_gap(PlatformKind platform, int seed)
    {
        Platforms.Require(platform);
        FailoverRound(seed, compress: false, platform);
    }

    /// <summary>The same with the default (compressed) checkpoint stream.</summary>
    [SkippableTheory]
    [MemberData(nameof(FailoverSeeds))]
    public void The_primary_VMM_killed_at_a_random_moment_fails_over_with_no_gap_compressed(PlatformKind platform, int seed)
    {
        Platforms.Require(platform);
        FailoverRound(seed, compress: true, platform);
    }

    /// <summary>
    /// Five kill moments on ptrace, two on KVM: a round takes 6 s and more, and what the extra seeds vary (the moment
    /// of the kill within an epoch) is the engine's, not the platform's; the platform's part (its dirty log, its vCPU
    /// state in the checkpoint) is the same in every round.
    /// </summary>
    public static TheoryData<PlatformKind, int> FailoverSeeds()
    {
        var d = new TheoryData<PlatformKind, int>();
        foreach (int seed in new[] { 1, 2, 3, 4, 5 }) d.Add(PlatformKind.Ptrace, seed);
        foreach (int seed in new[] { 1, 2 }) d.Add(PlatformKind.Kvm, seed);
        return d;
    }

    /// <summary>
    /// The nonce ticker of the failover rounds: a line every 2 ms, 3000 lines (6 s or more), checkpointed every 50 ms.
    /// After each pause the guest is silent for a moment (the pause, then the rest of its tick); a kill in that moment,
    /// with the backup holding that very checkpoint, leaves nothing that output commit could change. A long epoch
    /// keeps that moment a small part of it, so that most rounds would catch a broken output commit.
    /// </summary>
    private const int NonceCount = 3000, EpochMs = 50;
    private static readonly TimeSpan NonceTick = TimeSpan.FromMilliseconds(2);

    /// <summary>Writes NAME.toml at the primary: the nonce ticker, console_log at an absolute path.</summary>
    private string NonceConfig(string name, int count, string consoleLog, PlatformKind? platform = null)
    {
        var args = string.Join(", ", NonceTicker.Args(count, NonceTick, Mib).Select(a => $"\"{a}\""));
        return _primary.Config($"{name}.toml", $"""
            name = "{name}"
            memory = 32
            program = "{NonceTicker.Program}"
            args = [{args}]
            console_log = "{consoleLog}"
            {E2E.PlatformLine(platform)}
            """);
    }

    private void FailoverRound(int seed, bool compress, PlatformKind platform)
    {
        var random = new Random(seed * 7919);
        string log = Path.Combine(_primary.Work, "failover.log"); // the same path for both hosts: the combined console
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work);
        string[] options = ["-i", EpochMs.ToString(CultureInfo.InvariantCulture), "--tcp", $"127.0.0.1:{port}", "--insecure"];
        int vmm = CreateProtectedFrom(NonceConfig("fo", NonceCount, log, platform), "fo", compress ? options : ["-u", .. options], backup);
        AssertProtected("fo", vmm);

        int delay = random.Next(300, 1500);
        Thread.Sleep(delay);
        int atKill = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), $"the program ended before the kill (after a {delay} ms delay): make it run longer");
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the primary VMM {vmm} survived SIGKILL");

        backup.WaitForStderr("Remus failover for domain fo", TimeSpan.FromSeconds(30));
        int status = backup.WaitForExit(E2E.GuestPatience, () => $"console_log has {E2E.Lines(log)} lines\n{Details(backup)}");

        // At most one epoch re-emitted: see NonceTicker.LinesPerEpoch for the numbers (52 lines for -i 50 and a 2 ms tick).
        int maxRepeated = NonceTicker.LinesPerEpoch(TimeSpan.FromMilliseconds(EpochMs), NonceTick);
        NonceTicker.AssertReleasedOutput(E2E.ReadText(log), NonceCount, maxRepeated,
            $"{Platforms.Name(platform)}, seed {seed}, killed after {delay} ms with {atKill} lines out\n{Details(backup)}");
        Assert.True(status == 0, $"the backup's domain (the ticker) ended with status {status}\n{Details(backup)}");
        Assert.Empty(_backup.DomainEntries());
    }

    /// <summary>
    /// Output commit with a real backup whose acks are late: the backup's VMM (the receiver, by its own pid) is
    /// SIGSTOPped for 1.5 s, well under both --timeout 5000 values. While it is stopped, no line printed after the
    /// stop may appear in the console_log (an epoch the backup acked just before may still be released: its lines
    /// were all printed before the stop, which the guest's clock stamps show; the check does not depend on how long
    /// anything took). After SIGCONT the held lines come out, the domain is still protected, and the whole output has
    /// every counter once.
    /// </summary>
    [Fact]
    public void While_the_backup_is_stopped_nothing_printed_since_reaches_the_console()
    {
        const int count = 4000; // 8 s or more: still running after a slow protect and the stop
        string log = Path.Combine(_primary.Work, "held.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "5000");
        int vmm = CreateProtectedFrom(NonceConfig("held", count, log), "held",
            ["-i", EpochMs.ToString(CultureInfo.InvariantCulture), "--timeout", "5000", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released", details: () => Details(backup));

        Signals.Send(backup.Pid, "STOP");
        long stoppedAt = AckWithholdingTests.RealtimeNs(); // after kill(2) returned: the backup runs no more code from here
        int atStop = E2E.Lines(log), atCont;
        try
        {
            for (int i = 0; i < 15; i++)
            {
                Thread.Sleep(100);
                AckWithholdingTests.AssertNothingStampedAfter(E2E.ReadText(log), stoppedAt, "while the backup was stopped");
            }
            atCont = E2E.Lines(log);
            Assert.False(E2E.EndsWithDone(log), "the program ended while the backup was stopped: make it run longer");
        }
        finally
        {
            Signals.Send(backup.Pid, "CONT");
        }

        // The lines printed during the stop were held, not lost: they come out now, and protection goes on.
        E2E.WaitUntil(() => NonceTicker.Parse(E2E.ReadText(log), allowPartialLastLine: true).Any(t => t.RealtimeNs > stoppedAt),
            "a line printed during the stop reaches the console", details: () => Details(backup));
        var remus = AssertProtected("held", vmm);
        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        NonceTicker.AssertReleasedOutput(E2E.ReadText(log), count, maxRepeated: 0,
            $"{atStop} lines at the stop, {atCont} at SIGCONT; {remus.Epochs} epochs\n{Details(backup)}");
        Assert.True(backup.WaitForExit(TimeSpan.FromSeconds(30)) == 0, $"the backup should end quietly:\n{Details(backup)}");
        Assert.DoesNotContain("failover", backup.Stderr);
    }

    [Fact]
    public void The_backup_killed_leaves_the_primary_running_unprotected_with_its_output_complete()
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "lonely.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work);
        int vmm = CreateProtected("lonely", log, ["-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        backup.Kill();
        int atKill = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), "the program ended before the backup was killed: make it run longer");

        RemusDomainInfo? remus = null;
        E2E.WaitUntil(() => (remus = E2E.Single(_primary, "lonely").Remus) is { Protected: false },
            "list --json shows remus.protected false", details: () => Details(backup));
        Assert.False(string.IsNullOrEmpty(remus!.Lost), "list --json does not say why protection was lost");
        E2E.WaitUntil(() => E2E.Lines(log) > atKill + 5, "the output keeps flowing without the backup", details: () => Details(backup));

        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary, _backup);
        Assert.Contains("continues unprotected", E2E.Logs(_primary));
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Blackhole_protection_checkpoints_and_the_output_equals_native(PlatformKind platform)
    {
        Platforms.Require(platform);
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "bh.log");
        int vmm = CreateProtected("bh", log, ["-b", "-i", "20"], null, platform);
        var remus = AssertProtected("bh", vmm);
        Assert.Contains("blackhole", remus.Backup);

        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_primary));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Uncompressed_protection_with_a_backup_checkpoints_and_the_output_equals_native(PlatformKind platform)
    {
        Platforms.Require(platform);
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "raw.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work);
        int vmm = CreateProtected("raw", log, ["-u", "-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup, platform);
        var remus = AssertProtected("raw", vmm);
        Assert.Contains($"127.0.0.1:{port}", remus.Backup);

        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary, _backup);

        // The program's end ends protection: the backup lets its copy go without taking over.
        Assert.True(backup.WaitForExit(TimeSpan.FromSeconds(30)) == 0, $"the backup should end quietly:\n{Details(backup)}");
        Assert.DoesNotContain("failover", backup.Stderr);
        Assert.Empty(_backup.DomainEntries());
    }

    /// <summary>
    /// A backup whose primary goes away before one complete checkpoint arrived has nothing to take over: it exits
    /// non-zero with one clear line (after its "waiting" line) and leaves nothing registered.
    /// </summary>
    [Theory]
    [InlineData("garbage")]
    [InlineData("header-only")]
    [InlineData("initial-sync-round-only")]
    [InlineData("header-then-silence")]
    public void A_primary_lost_before_the_first_complete_checkpoint_leaves_the_backup_nothing(string what)
    {
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _backup.Work, "--timeout", "500"); // HeaderConfig's console_log
        using (var client = new TcpClient())
        {
            client.Connect("127.0.0.1", port);
            var stream = client.GetStream();
            if (what == "garbage")
            {
                stream.Write("GET / HTTP/1.0\r\n\r\nthis is not a checkpoint stream"u8);
            }
            else
            {
                var writer = new CheckpointWriter(stream);
                writer.WriteHeader(new StreamHeader(HeaderConfig()));
                if (what == "initial-sync-round-only")
                {
                    var page = new byte[StreamFormat.PageSize];
                    page.AsSpan().Fill(0x5a);
                    writer.WritePage(0x400, page); // guest RAM starts at 4 MiB (pfn 0x400)
                    writer.WritePage(0x401, page);
                    writer.EndCheckpoint(0); // pages only: a pre-copy round, not a checkpoint
                }
                stream.Flush();
                if (what == "header-then-silence")
                {
                    // The watchdog (--timeout 500) must declare the primary lost while the connection stays open.
                    var watch = Stopwatch.StartNew();
                    backup.WaitForExit(TimeSpan.FromSeconds(30));
                    Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(400), $"the backup gave up after {watch.ElapsedMilliseconds} ms of a 500 ms timeout");
                }
            }
        }

        int status = backup.WaitForExit(TimeSpan.FromSeconds(30));
        Assert.True(status != 0, $"the backup should fail:\n{backup.Describe()}");
        var lines = E2E.WithoutInsecureWarning(backup.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), insecure: true, backup.Describe());
        Assert.True(lines.Length == 2 && lines[0].StartsWith("remus: waiting for a Remus primary", StringComparison.Ordinal)
                    && lines[1].StartsWith("remus: ", StringComparison.Ordinal),
            $"want the 'waiting' line and one error line:\n{backup.Describe()}");
        Assert.True(lines[1].Contains("before the first complete checkpoint", StringComparison.Ordinal)
                    && !lines[1].Contains("internal error", StringComparison.Ordinal),
            $"want a clear 'lost before the first complete checkpoint' line:\n{backup.Describe()}");
        Assert.DoesNotContain("   at ", backup.Stderr);
        Assert.DoesNotContain("failover", backup.Stderr);
        Assert.Empty(backup.Stdout);
        Assert.True(_backup.DomainEntries().Length == 0,
            $"the backup left a registry entry: {string.Join(", ", _backup.DomainEntries())}\n{Details(backup)}");
        Assert.Empty(_backup.List());
        Assert.Empty(_backup.ProcessesOfThisRunDir());
    }

    [Fact]
    public void Protect_to_a_closed_port_fails_with_one_line_and_the_domain_runs_on_unprotected() =>
        ProtectToADeadBackup("closed-port");

    [Theory]
    [InlineData("command-exits-at-once")]
    [InlineData("never-acks")]
    public void Protect_to_a_dead_backup_fails_with_one_line_and_the_domain_runs_on_unprotected(string how) =>
        ProtectToADeadBackup(how);

    private void ProtectToADeadBackup(string how)
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "alone.log");
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "alone", Count, Interval, Mib, log)));
        string[] target = how switch
        {
            "closed-port" => ["--tcp", $"127.0.0.1:{E2E.FreePort()}", "--insecure"],
            "command-exits-at-once" => ["-s", "", "alone", "true"],
            "never-acks" => ["--timeout", "500", "-s", "", "alone", "cat >/dev/null"],
            _ => throw new ArgumentOutOfRangeException(nameof(how)),
        };
        string[] args = how == "closed-port" ? ["protect", "-i", "20", .. target, "alone"] : ["protect", "-i", "20", .. target];
        var result = _primary.Remus(args, stdin: null, timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode != 0, $"protect to a dead backup should fail: {result}");
        Assert.Empty(result.StdoutText);
        var errors = E2E.WithoutInsecureWarning(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries), args.Contains("--insecure"), result)
            .Where(l => !l.StartsWith("initial sync round", StringComparison.Ordinal)).ToArray(); // progress lines may come first
        Assert.True(errors.Length == 1 && errors[0].StartsWith("remus: ", StringComparison.Ordinal), $"want one 'remus: ' line: {result}");
        Assert.DoesNotContain("no domain named", errors[0]);
        Assert.DoesNotContain("internal error", errors[0]);

        var info = E2E.Single(_primary, "alone");
        Assert.Equal(vmm, info.Pid);
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.True(info.Remus is null || !info.Remus.Protected, "the domain claims to be protected");
        int now = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), "the program ended before the check: make it run longer");
        E2E.WaitUntil(() => E2E.Lines(log) > now, "the program goes on printing");
        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_primary));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary);
    }

    /// <summary>A valid domain configuration, as a primary's stream header carries it.</summary>
    private byte[] HeaderConfig()
    {
        var config = new DomainConfig
        {
            Name = "early",
            MemoryMiB = 32,
            Program = Ticker.Program,
            Args = Ticker.Args(Count, Interval, Mib),
            ConsoleLog = Path.Combine(_backup.Work, "early.log"),
        };
        return JsonSerializer.SerializeToUtf8Bytes(config, ToolstackJson.Default.DomainConfig);
    }
}
