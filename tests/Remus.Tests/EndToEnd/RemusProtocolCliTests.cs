using System.Diagnostics;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The Remus protocol through the real CLI (issue 15): a backup stopped with SIGSTOP longer than its timeout does
/// not take over (the primary releases it, and only one copy runs); an interval longer than the backup's timeout
/// works thanks to heartbeats; a timeout too short to work is refused with one line; `remus pause` of a protected
/// domain holds across checkpoints.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class RemusProtocolCliTests : IDisposable
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

    private int CreateProtected(string name, string log, string[] protectOptions, Receiver receiver)
    {
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, name, Count, Interval, Mib, log)));
        var protect = _primary.Remus(["protect", .. protectOptions, name], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(receiver)}");
        Assert.Contains($"domain '{name}' is protected", protect.StdoutText);
        return vmm;
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    [Fact]
    public void A_SIGSTOPped_backup_is_released_by_the_primary_and_only_one_copy_runs()
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "stalled.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000");
        int vmm = CreateProtected("stalled", log, ["-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        Signal(backup.Pid, "STOP"); // three timeouts long: the primary gives up on it meanwhile
        try
        {
            E2E.WaitUntil(() => E2E.Single(_primary, "stalled").Remus is { Protected: false },
                "the primary gives up on the stalled backup", details: () => Details(backup));
            Thread.Sleep(3000);
        }
        finally
        {
            Signal(backup.Pid, "CONT");
        }

        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.DoesNotContain("failover", backup.Stderr); // before the fix: it failed over right after SIGCONT
        Assert.Contains("released its backup", backup.Stderr);
        Assert.True(status == 0, $"the released backup should end quietly:\n{Details(backup)}");
        Assert.Empty(_backup.DomainEntries());

        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary, _backup);
        Assert.Contains("continues unprotected", E2E.Logs(_primary));
    }

    [Fact]
    public void An_interval_longer_than_the_backups_timeout_works_thanks_to_heartbeats()
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "slow.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000");
        int vmm = CreateProtected("slow", log, ["-i", "3000", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        Assert.True(E2E.Single(_primary, "slow").Remus is { Protected: true });

        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary, _backup);
        Assert.True(backup.WaitForExit(TimeSpan.FromSeconds(30)) == 0, $"the backup should end quietly:\n{Details(backup)}");
        Assert.DoesNotContain("failover", backup.Stderr); // before the fix: it failed over while the primary was healthy
        Assert.DoesNotContain("continues unprotected", E2E.Logs(_primary));
    }

    [Fact]
    public void A_backup_timeout_too_short_to_work_is_refused_with_one_line_and_the_domain_runs_on()
    {
        string log = Path.Combine(_primary.Work, "short.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "50");
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "short", Count, Interval, Mib, log)));
        string line = _primary.Fails("protect", "-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure", "short");
        Assert.Contains("--timeout of 50 ms is too short", line);
        var info = E2E.Single(_primary, "short");
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        Assert.True(info.Remus is null or { Protected: false });
        Assert.True(backup.WaitForExit(TimeSpan.FromSeconds(30)) != 0);
        Assert.DoesNotContain("failover", backup.Stderr);
        Assert.Empty(_backup.DomainEntries());
        _primary.Ok("destroy", "short");
    }

    [Fact]
    public void Pause_of_a_protected_domain_holds_across_checkpoints()
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "paused.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work);
        int vmm = CreateProtected("paused", log, ["-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        _primary.Ok("pause", "paused");
        long epochs = E2E.Single(_primary, "paused").Remus!.Epochs;
        E2E.WaitUntil(() => E2E.Single(_primary, "paused").Remus!.Epochs >= epochs + 5, "five checkpoints pass");
        int lines = E2E.Lines(log); // everything held before the pause is out now
        epochs = E2E.Single(_primary, "paused").Remus!.Epochs;
        E2E.WaitUntil(() => E2E.Single(_primary, "paused").Remus!.Epochs >= epochs + 10, "ten more checkpoints pass");
        Assert.Equal(lines, E2E.Lines(log)); // before the fix: the console kept growing
        var info = E2E.Single(_primary, "paused");
        Assert.Equal(DomainRunState.Paused, info.State);
        Assert.True(info.Remus!.Protected);

        _primary.Ok("unpause", "paused");
        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _primary, _backup);
        Assert.True(backup.WaitForExit(TimeSpan.FromSeconds(30)) == 0, $"the backup should end quietly:\n{Details(backup)}");
    }

    /// <summary>
    /// The primary VMM stopped with SIGSTOP, over the command transport (stdin/stdout pipes, as over ssh): the backup's
    /// reader waits on the pipe for its timeout and takes over; the primary, continued, reads TAKEOVER, drops what it
    /// held and stops its domain for good. The combined console: no gap, at most one epoch repeated.
    /// </summary>
    [Fact]
    public void A_SIGSTOPped_primary_is_taken_over_through_the_pipe_and_fenced_when_it_continues()
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_primary.Work, "frozen.log");
        string err = Path.Combine(_backup.Work, "receiver.err");
        string receiver = $"env REMUS_RUN_DIR='{_backup.RunDir}' '{RemusCli.DotnetPath}' '{RemusCli.DllPath}' migrate-receive -r --timeout 1000 2>>'{err}'";
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "frozen", Count, Interval, Mib, log)));
        var protect = _primary.Remus(["protect", "-i", "20", "-s", "", "frozen", receiver], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{E2E.Logs(_primary)}");
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        Signal(vmm, "STOP");
        try
        {
            E2E.WaitUntil(() => File.Exists(err) && E2E.ReadText(err).Contains("Remus failover for domain frozen", StringComparison.Ordinal),
                "the backup takes over", details: () => $"{(File.Exists(err) ? E2E.ReadText(err) : "")}\n{E2E.Logs(_backup)}");
        }
        finally
        {
            Signal(vmm, "CONT");
        }
        E2E.WaitUntil(() => !DomainTestBed.ProcessExists(vmm), "the fenced primary VMM ends", details: () => E2E.Logs(_primary));
        Assert.Contains("was taken over by the backup; stopping here", E2E.Logs(_primary));

        E2E.WaitUntil(() => E2E.EndsWithDone(log), "the backup's copy finishes the program", E2E.GuestPatience,
            () => $"{E2E.ReadText(err)}\n{E2E.Logs(_backup)}");
        int repeated = Continuity.AssertNoGapAtMostOneEpochRepeated(native.Result, E2E.ReadText(log));
        Assert.True(repeated <= 40, $"{repeated} lines repeated: more than one epoch's worth");
    }
}
