using System.Diagnostics;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Remus.Toolstack.Witness;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The etcd witness through the real CLI (issue 12 item 4): etcd down before `protect` gives a clear error and the
/// domain runs on unprotected; without a witness `protect` warns once; with one, the primary's VMM holds the domain's
/// key; a killed primary is taken over by the backup once its lease expired (the key then names the backup); and a
/// cut replication channel leaves exactly one copy running — the primary, which still holds the key — while the
/// backup declines to take over and discards its copy.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class WitnessTests : IDisposable
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

    private (int Vmm, RunResult Protect) CreateProtected(string name, string log, string[] protectOptions, Receiver receiver, int count = Count)
    {
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, name, count, Interval, Mib, log)));
        var protect = _primary.Remus(["protect", .. protectOptions, name], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(receiver)}");
        Assert.Contains($"domain '{name}' is protected", protect.StdoutText);
        return (vmm, protect);
    }

    [Fact]
    public void Witness_down_before_protect_is_a_clear_error_and_the_domain_runs_on()
    {
        string url = $"http://127.0.0.1:{EtcdCluster.FreePort()}";
        string log = Path.Combine(_primary.Work, "down.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000");
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "down", Count, Interval, Mib, log)));
        string line = _primary.Fails("protect", "-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure", "--witness", url, "down");
        Assert.Contains("witness unreachable", line);
        Assert.Contains(url, line);
        var info = E2E.Single(_primary, "down");
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        Assert.True(info.Remus is null or { Protected: false });
        backup.WaitForExit(TimeSpan.FromSeconds(30), () => Details(backup));
        Assert.DoesNotContain("failover", backup.Stderr);
        Assert.Empty(_backup.DomainEntries());
        _primary.Ok("destroy", "down");
    }

    [Fact]
    public void Protect_without_a_witness_warns_once()
    {
        string log = Path.Combine(_primary.Work, "nowit.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000");
        var (_, protect) = CreateProtected("nowit", log, ["-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure"], backup);
        int warnings = protect.StderrText.Split('\n').Count(l => l.Contains("no witness: a network partition between the hosts can leave the domain running on both; use --witness URL"));
        Assert.True(warnings == 1, $"want the warning once: {protect}");
        _primary.Ok("destroy", "nowit");
        backup.WaitForExit(TimeSpan.FromSeconds(30), () => Details(backup));
    }

    [SkippableFact]
    public void A_killed_primary_is_taken_over_once_its_lease_expired_and_the_key_names_the_backup()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        string url = etcd.ClientUrls[0];
        using var witness = new EtcdWitness(etcd.ClientUrls);
        string log = Path.Combine(_primary.Work, "wit.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000", "--witness", url, "--witness-ttl", "1000");
        var (vmm, protect) = CreateProtected("wit", log, ["-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure", "--witness", url, "--witness-ttl", "1000"], backup);
        Assert.DoesNotContain("no witness", protect.StderrText);
        Assert.Contains($"witness {url}", protect.StdoutText);
        var holder = witness.Holder("wit");
        Assert.True(holder is { Role: "primary" } && holder.Pid == vmm, $"the key should name the primary VMM {vmm}: {holder}\n{Details(backup)}");
        Assert.Equal(url, E2E.Single(_primary, "wit").Remus?.Witness);
        var cluster = _primary.Ok("list", "--cluster", "--witness", url).StdoutText;
        Assert.Matches($@"(?m)^wit\s+{System.Text.RegularExpressions.Regex.Escape(Environment.MachineName)}\s+{vmm}\s+primary\s", cluster);

        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only: its lease is neither renewed nor revoked
        Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the primary VMM {vmm} survived SIGKILL");
        backup.WaitForStderr("Remus failover for domain wit", TimeSpan.FromSeconds(30));
        holder = witness.Holder("wit");
        Assert.True(holder is { Role: "backup" }, $"the key should name the backup now: {holder}\n{Details(backup)}");
        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.True(status == 0, $"the backup's domain (the ticker) ended with status {status}\n{Details(backup)}");
        Assert.True(E2E.EndsWithDone(log), $"the ticker did not finish on the backup\n{Details(backup)}");
    }

    [SkippableFact]
    public void A_cut_replication_channel_leaves_one_copy_running_the_primary_and_the_backup_declines()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        string url = etcd.ClientUrls[0];
        using var witness = new EtcdWitness(etcd.ClientUrls);
        string log = Path.Combine(_primary.Work, "cut.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000", "--witness", url, "--witness-ttl", "1000");
        using var channel = new EtcdRelay($"http://127.0.0.1:{port}"); // a plain TCP relay on the replication channel
        var (vmm, _) = CreateProtected("cut", log, ["-i", "20", "--tcp", $"127.0.0.1:{channel.Port}", "--insecure", "--witness", url, "--witness-ttl", "1000"], backup, count: 1500);
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        channel.Cut();
        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.Contains("still holds the witness key", backup.Stderr);
        Assert.DoesNotContain("Remus failover", backup.Stderr);
        Assert.True(status == 0, $"the declining backup should end quietly:\n{Details(backup)}");
        Assert.Empty(_backup.DomainEntries());

        var info = E2E.Single(_primary, "cut");
        Assert.Equal(vmm, info.Pid);
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.True(info.Remus is { Protected: false, Fenced: false }, $"{System.Text.Json.JsonSerializer.Serialize(info.Remus)}");
        Assert.Equal(vmm, witness.Holder("cut")?.Pid);
        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        Assert.True(E2E.EndsWithDone(log));
    }

    [SkippableFact]
    public void A_primary_cut_from_backup_and_etcd_is_taken_over_after_its_lease_expired_and_is_fenced_on_return() =>
        CutFromBoth(checkNeverBoth: false);

    /// <summary>
    /// Issue 12 (c): after the cut, no tick printed by both copies beyond the one epoch the backup re-emits. Red before
    /// the unprotected marker (seen: ticks the primary released during ~0.9 s after the cut, re-executed by the backup
    /// from its older checkpoint): a primary that lost its backup now releases nothing until the witness confirmed
    /// the marker, which the backup's take-over transaction requires absent; cut from etcd too, it never gets there.
    /// </summary>
    [SkippableFact]
    public void A_primary_cut_from_backup_and_etcd_never_emits_what_the_backup_re_executes() => CutFromBoth(checkNeverBoth: true);

    private void CutFromBoth(bool checkNeverBoth)
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        const int count = 4000;
        var tick = TimeSpan.FromMilliseconds(2);
        using var etcd = new EtcdCluster();
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var primaryToEtcd = new EtcdRelay(etcd.ClientUrls[0]);
        string log = Path.Combine(_primary.Work, "both.log"); // the same path for both hosts: the combined console
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000", "--witness", etcd.ClientUrls[0], "--witness-ttl", "1000");
        using var channel = new EtcdRelay($"http://127.0.0.1:{port}");
        var args = string.Join(", ", NonceTicker.Args(count, tick).Select(a => $"\"{a}\""));
        string config = _primary.Config("both.toml", $"""
            name = "both"
            memory = 32
            program = "{NonceTicker.Program}"
            args = [{args}]
            console_log = "{log}"
            """);
        int vmm = E2E.VmmPid(_primary.Ok("create", config));
        var protect = _primary.Remus(["protect", "-i", "50", "--tcp", $"127.0.0.1:{channel.Port}", "--insecure", "--witness", primaryToEtcd.Url, "--witness-ttl", "1000", "both"],
            stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(backup)}");
        E2E.WaitUntil(() => E2E.Lines(log) >= 100, "the protected program's output is released");

        channel.Cut();
        primaryToEtcd.Cut();
        backup.WaitForStderr("Remus failover for domain both", TimeSpan.FromSeconds(30));
        Assert.Equal("backup", witness.Holder("both")?.Role);

        primaryToEtcd.Restore(); // the old primary learns that another copy holds the key: fenced, its domain stopped
        Assert.True(Process.GetProcessById(vmm).WaitForExit(30_000), $"the fenced primary VMM {vmm} still runs\n{Details(backup)}");
        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.True(status == 0, $"the backup's domain ended with status {status}\n{Details(backup)}");
        Assert.Contains("LOST", E2E.Logs(_primary));
        Assert.Empty(_primary.DomainEntries());
        Assert.True(E2E.EndsWithDone(log), $"the ticker did not finish on the backup\n{Details(backup)}");
        if (!checkNeverBoth) return;
        // Never both: no counter printed twice with different lines (a copy re-running what the other emitted), no
        // line lost; at most one epoch's lines repeated (the backup re-emits its last checkpoint's output).
        NonceTicker.AssertReleasedOutput(E2E.ReadText(log), count, NonceTicker.LinesPerEpoch(TimeSpan.FromMilliseconds(50), tick), Details(backup));
    }
}
