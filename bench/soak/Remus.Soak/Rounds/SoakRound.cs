using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Soak.Continuity;
using Remus.Soak.Harness;

namespace Remus.Soak.Rounds;

/// <summary>
/// One soak round through the real CLI, as a user runs Remus: a backup `remus migrate-receive -r --tcp-listen` in a
/// run directory of its own, the nonce ticker created at the primary (`remus create`, its console_log a file both
/// hosts write: the combined console the user sees), `remus protect --tcp` to the backup through the harness's
/// <see cref="ChannelRelay"/>, one fault at the plan's moment, then the wait for the end and the checks of the
/// continuity rule on the combined console (<see cref="ReleasedOutput.Check"/>), and of what each party should have
/// done for that fault (docs/stream-format.md §7.1). Used by the soak harness (bench/soak) and its short version in
/// CI (tests/Remus.Tests/Hardening/SoakShortTests).
/// </summary>
internal static partial class SoakRound
{
    private const int SIGKILL = 9, SIGSTOP = 19;
    private const string Name = "soak";

    /// <summary>What every round needs: remus.dll, the ticker built static, the backup's --timeout.</summary>
    public sealed record Setup(string Dll, string Ticker, int TimeoutMs = 1000);

    public static RoundResult Run(RoundPlan plan, Setup setup)
    {
        var clock = Stopwatch.StartNew();
        using var primary = new RemusHost(setup.Dll, "remus-soak-p-");
        using var backupHost = new RemusHost(setup.Dll, "remus-soak-b-");
        var notes = new List<string>();
        RemusBackground? backup = null, protect = null;
        ChannelRelay? relay = null;
        int vmm = 0;
        string log = Path.Combine(primary.Dir, "console.log");
        RoundResult Result(Verdict v, string outcome, string? failure) => new(plan, v, outcome, failure, clock.Elapsed.TotalSeconds);
        string Details() =>
            $"notes: {string.Join("; ", notes)}\nchannel: {relay?.Events}\n--- backup (pid {backup?.Pid}) stderr ---\n{backup?.Stderr}" +
            $"--- protect stdout/stderr ---\n{protect?.Stdout}{protect?.Stderr}--- primary logs ---\n{Logs(primary.Dir)}--- backup logs ---\n{Logs(backupHost.Dir)}";
        try
        {
            int backupPort = Loopback.FreePort();
            backup = backupHost.Start("migrate-receive", "-r", "--tcp-listen", $"127.0.0.1:{backupPort}", "--insecure",
                "--allow-path", primary.Dir, "--allow-path", Path.GetDirectoryName(setup.Ticker)!,
                "--timeout", setup.TimeoutMs.ToString(CultureInfo.InvariantCulture));
            backup.WaitForStderr("waiting for a");
            relay = new ChannelRelay(backupPort);

            string config = Path.Combine(primary.Dir, "soak.toml");
            File.WriteAllText(config, $"""
                name = "{Name}"
                memory = 64
                program = "{setup.Ticker}"
                args = ["{plan.Count}", "{RoundPlan.TickMicros}", "{plan.Mib}"]
                console_log = "{log}"
                platform = "{PlatformSelection.NameOf(plan.Platform)}"
                """);
            vmm = int.Parse(VmmPidPattern().Match(primary.Run("create", config)).Groups[1].Value, CultureInfo.InvariantCulture);
            if (!WaitUntil(() => Lines(log) >= 5, TimeSpan.FromSeconds(60)))
                return Result(Verdict.Missed, "the program did not start printing", Details());

            protect = primary.Start(["protect", "-i", plan.IntervalMs.ToString(CultureInfo.InvariantCulture), .. plan.Compress ? Array.Empty<string>() : ["-u"],
                "--timeout", "5000", "--tcp", $"127.0.0.1:{relay.Port}", "--insecure", Name]);

            // The moment.
            bool syncing;
            var sent = new ManualResetEventSlim();
            relay.CheckpointSent += sent.Set;
            if (plan.Moment == Moment.Sync)
            {
                WaitUntil(() => relay.ForwardBytes >= plan.SyncBytes || protect.HasExited, TimeSpan.FromSeconds(60), pollMs: 0);
                syncing = !protect.HasExited;
            }
            else
            {
                int? protected_ = protect.WaitForExit(TimeSpan.FromSeconds(120));
                if (protected_ is null)
                    return Result(Verdict.Failed, "hang", $"remus protect did not end within 120 s, with no fault\n{Details()}");
                // On a loaded machine the backup may ack the first checkpoint later than the lease allows: the primary
                // then gives up on it, as designed, and goes on unprotected. No fault can be placed in that round.
                if (protected_ != 0)
                    return Result(Verdict.Missed, $"protect failed with no fault: {LastLine(protect.Stderr)}", Details());
                syncing = false;
                Thread.Sleep(plan.DelayMs);
                if (plan.Moment == Moment.Apply)
                {
                    sent.Reset();
                    var deadline = Stopwatch.StartNew();
                    while (!sent.Wait(TimeSpan.FromMilliseconds(50)))
                    {
                        // Protection may end on its own on a loaded machine (an ack later than the lease: the primary
                        // releases its backup, as designed); then there is no checkpoint to place the fault after.
                        if (relay.Ended || backup.HasExited)
                            return Result(Verdict.Missed, $"protection ended before the fault ({LastEvents(relay)})", Details());
                        if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                            return Result(Verdict.Failed, "no checkpoint", $"no checkpoint went through the channel for 30 s while protected\n{Details()}");
                    }
                    if (plan.AfterCheckpointMs > 0) Thread.Sleep(plan.AfterCheckpointMs);
                }
            }
            string before = ReadText(log);
            if (before.EndsWith("done\n", StringComparison.Ordinal))
                return Result(Verdict.Missed, "the program ended before the fault", null);
            if (backup.Stderr.Contains("Remus failover", StringComparison.Ordinal))
                notes.Add("the backup had taken over before the fault (the primary looked silent)");
            if (!syncing && (relay.Ended || backup.HasExited))
                return Result(Verdict.Missed, $"protection ended before the fault ({LastEvents(relay)})", Details());
            int checkpointsAtFault = relay.CheckpointEnds, acksAtFault = relay.Acks;
            double epochMs = relay.RecentEpochMs(3);
            notes.Add($"fault with {Lines(before)} lines out, {checkpointsAtFault} checkpoint ends and {acksAtFault} acks through, {(syncing ? "protect still running" : "protected")}");

            // The fault.
            switch (plan.Kind)
            {
                case FaultKind.Kill:
                    Signal(vmm, SIGKILL);
                    break;
                case FaultKind.Stop:
                    Signal(vmm, SIGSTOP);
                    // Past the timeout: until the backup acted on the silence (took over, or gave up), then SIGKILL
                    // while stopped, so that the primary can never run again.
                    bool acted = WaitUntil(() => backup.HasExited || backup.Stderr.Contains("Remus failover", StringComparison.Ordinal),
                        TimeSpan.FromMilliseconds(3L * setup.TimeoutMs + 30_000));
                    if (!acted) notes.Add("the backup did nothing about a stopped primary within 3 timeouts + 30 s");
                    Signal(vmm, SIGKILL);
                    break;
                case FaultKind.Cut:
                    relay.Cut(plan.CutForward);
                    break;
                case FaultKind.BackupKill:
                    backup.Kill();
                    break;
            }

            // The end: the backup's receiver (and the domain it took over), the primary's VMM and protect all gone.
            var patience = TimeSpan.FromSeconds(120);
            bool ended = WaitUntil(() => backup.HasExited && !Alive(vmm) && protect.HasExited, patience);
            string text = ReadText(log);
            if (!ended)
            {
                string who = string.Join(", ", new[]
                {
                    backup.HasExited ? null : $"the backup (pid {backup.Pid})",
                    Alive(vmm) ? $"the primary VMM (pid {vmm})" : null,
                    protect.HasExited ? null : "remus protect",
                }.Where(s => s is not null));
                return Result(Verdict.Failed, "hang", $"{who} still running {patience.TotalSeconds:F0} s after the fault; the console has {Lines(text)} lines " +
                                                      $"{(text.EndsWith("done\n", StringComparison.Ordinal) ? "and ends with done" : "without done")}\n{Details()}");
            }
            if (plan.Kind is FaultKind.Stop or FaultKind.Cut) epochMs = Math.Max(epochMs, relay.RecentEpochMs(3)); // it may take over a later one
            return Judge(plan, text, epochMs, relay, backup, protect, primary, backupHost, syncing, notes, Result, Details);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException or FormatException)
        {
            return Result(Verdict.Failed, "harness error", $"{e.Message}\n{Details()}");
        }
        finally
        {
            if (vmm > 0 && Alive(vmm)) HostOs.kill(vmm, SIGKILL); // a stopped or stuck primary, by its pid
            backup?.Kill();
            protect?.Kill();
            backupHost.TryRun("destroy", Name);
            primary.TryRun("destroy", Name);
            relay?.Dispose();
            backup?.WaitForExit(TimeSpan.FromSeconds(10));
            backup?.Dispose();
            protect?.Dispose();
        }
    }

    /// <summary>The checks once every party has ended.</summary>
    private static RoundResult Judge(RoundPlan plan, string text, double epochMs, ChannelRelay relay, RemusBackground backup, RemusBackground protect,
        RemusHost primary, RemusHost backupHost, bool syncing, List<string> notes,
        Func<Verdict, string, string?, RoundResult> result, Func<string> details)
    {
        string backupSaid = backup.Stderr;
        int backupStatus = backup.WaitForExit(TimeSpan.FromSeconds(10)) ?? -1;
        int protectStatus = protect.WaitForExit(TimeSpan.FromSeconds(10)) ?? -1;
        bool tookOver = backupSaid.Contains("Remus failover", StringComparison.Ordinal);
        bool gaveUp = backupSaid.Contains("before the first complete checkpoint", StringComparison.Ordinal);
        string primaryLog = Logs(primary.Dir);
        bool fenced = primaryLog.Contains("was taken over by the backup", StringComparison.Ordinal);
        bool unprotected = primaryLog.Contains("continues unprotected", StringComparison.Ordinal);
        // At most one epoch re-emitted: as many lines as the longest of the last epochs the channel carried before the
        // fault can hold (from one CHECKPOINT_END to the next; the checkpoint taken over is one of the last two), an
        // interval more for the difference between a checkpoint's pause and its end on the wire, and a tick
        // straddling each pause; never less than the tests' bound (NonceTicker.LinesPerEpoch).
        double tickMs = RoundPlan.TickMicros / 1000.0;
        int maxRepeated = Math.Max(2 * ((int)Math.Ceiling(plan.IntervalMs / tickMs) + 1),
            (int)Math.Ceiling((epochMs + plan.IntervalMs) / tickMs) + 2);
        var problems = new List<string>();
        string outcome;
        ReleasedOutput.Finding finding = default;
        void Check(int maxRepeat, bool complete = true)
        {
            try { finding = ReleasedOutput.Check(text, plan.Count, maxRepeat, complete: complete); }
            catch (ContinuityViolation e) { problems.Add("continuity: " + e.Message); }
        }

        if (tookOver)
        {
            outcome = $"backup took over{TakeoverCheckpoint(backupSaid)}";
            Check(maxRepeated);
            outcome += $", {finding.Repeated} lines re-emitted (bound {maxRepeated})";
            if (backupStatus != 0) problems.Add($"the backup's domain (the ticker) ended with status {backupStatus}");
            if (plan.Kind == FaultKind.BackupKill) problems.Add("a killed backup took over");
            if (plan.Kind == FaultKind.Cut && !plan.CutForward)
                problems.Add("the backup took over though only its acks were cut (the primary should have released it)");
            if (plan.Kind == FaultKind.Cut && !fenced)
                problems.Add("the backup took over but the primary never learnt it (no 'was taken over by the backup' in its log)");
        }
        else if (plan.Kind is FaultKind.Kill or FaultKind.Stop)
        {
            // The primary is dead: the backup must take over, unless it never had a complete checkpoint.
            if (gaveUp && syncing)
            {
                outcome = "primary lost during the sync; the backup gave up cleanly";
                Check(0, complete: false);
                if (backupStatus == 0) problems.Add("the backup that gave up exited with status 0");
                if (ListsDomain(backupHost)) problems.Add("the backup that gave up left a domain behind");
            }
            else
            {
                outcome = gaveUp ? "the backup gave up after protect had returned" : "no takeover";
                problems.Add(gaveUp
                    ? "the backup gave up for want of a complete checkpoint, yet protect had returned (it had one)"
                    : $"the primary was {(plan.Kind == FaultKind.Kill ? "killed" : "stopped")} and the backup did not take over (exit {backupStatus})");
            }
        }
        else
        {
            // Backup killed, or a cut the primary survived: the primary goes on alone and prints everything once.
            outcome = plan.Kind == FaultKind.BackupKill ? "primary continued without its backup" : "primary continued; the backup stood down";
            Check(0);
            if (protectStatus == 0 && !unprotected && plan.Kind == FaultKind.BackupKill)
                problems.Add("protection was in place and the backup died, but the primary never said it continues unprotected");
            if (protectStatus != 0) outcome += " (protect failed)";
            if (fenced) problems.Add("the primary was fenced, yet the backup never took over");
        }
        if (ListsDomain(backupHost) || ListsDomain(primary)) problems.Add("a domain is still registered after the end");
        if (plan.Moment == Moment.Sync && !syncing) outcome += " (the sync had ended before the fault)";
        notes.Add($"protect exit {protectStatus}, backup exit {backupStatus}, last epochs on the wire up to {epochMs:F0} ms");
        return problems.Count == 0
            ? result(Verdict.Passed, outcome, null)
            : result(Verdict.Failed, outcome, string.Join("\n", problems) + "\n" + details());
    }

    private static string LastLine(string text) => text.TrimEnd().Split('\n')[^1];

    private static string LastEvents(ChannelRelay relay) => string.Join(", ", relay.Events.Split(", ").TakeLast(3));

    private static string TakeoverCheckpoint(string said)
    {
        var m = Regex.Match(said, @"Remus failover for domain \S+ \(checkpoint (\d+)");
        return m.Success ? $" from checkpoint {m.Groups[1].Value}" : said.Contains("had exited", StringComparison.Ordinal) ? " after the program's exit" : "";
    }

    private static bool ListsDomain(RemusHost host)
    {
        try
        {
            var (code, stdout, _) = host.Exec("list");
            return code == 0 && stdout.Split('\n').Any(l => l.StartsWith(Name + " ", StringComparison.Ordinal));
        }
        catch (TimeoutException) { return false; }
    }

    /// <summary>Whether the process runs (or is stopped): a zombie no longer counts.</summary>
    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return !stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static void Signal(int pid, int signal)
    {
        if (HostOs.kill(pid, signal) != 0 && Alive(pid))
            throw new InvalidOperationException($"kill({pid}, {signal}) failed");
    }

    private static bool WaitUntil(Func<bool> condition, TimeSpan timeout, int pollMs = 10)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline) return false;
            if (pollMs > 0) Thread.Sleep(pollMs);
            else Thread.Yield();
        }
        return true;
    }

    /// <summary>The text of a console_log (read while a VMM may be appending to it); "" if it does not exist yet.</summary>
    private static string ReadText(string path)
    {
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static int Lines(string pathOrText) =>
        (pathOrText.StartsWith('/') && !pathOrText.Contains('\n') ? ReadText(pathOrText) : pathOrText).Count(c => c == '\n');

    /// <summary>A run directory's VMM logs (logs/*.log).</summary>
    private static string Logs(string runDir)
    {
        var dir = Path.Combine(runDir, "logs");
        if (!Directory.Exists(dir)) return "(no logs)\n";
        var sb = new StringBuilder();
        foreach (var file in Directory.GetFiles(dir).Order())
            sb.Append("--- ").Append(Path.GetFileName(file)).AppendLine(" ---").Append(ReadText(file));
        return sb.ToString();
    }

    [GeneratedRegex(@"VMM pid (\d+)")]
    private static partial Regex VmmPidPattern();
}
