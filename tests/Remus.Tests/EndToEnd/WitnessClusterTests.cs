using System.Diagnostics;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack.Witness;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The etcd witness as a 3-member cluster through the real CLI (issue 12 item 4): both hosts are given every member's
/// URL; one member is killed mid-run (the first one, which the clients reach first) and protection goes on — the
/// program's output keeps being released, the domain stays protected, the key still names the primary — and then a
/// killed primary is still taken over by the backup through the two members left (the takeover time printed).
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class WitnessClusterTests(ITestOutputHelper output) : IDisposable
{
    private const int Count = 1500, Interval = 10, Mib = 1, TtlMs = 1000, EpochMs = 20;

    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
    }

    private string Details(Receiver? receiver) => $"{receiver?.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";

    [SkippableFact]
    public void A_three_member_etcd_cluster_losing_one_member_mid_run_keeps_the_domain_protected()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster(size: 3);
        string urls = string.Join(",", etcd.ClientUrls);
        string ttl = TtlMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string log = Path.Combine(_primary.Work, "trio.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "1000", "--witness", urls, "--witness-ttl", ttl);
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "trio", Count, Interval, Mib, log)));
        var protect = _primary.Remus(["protect", "-i", $"{EpochMs}", "--tcp", $"127.0.0.1:{port}", "--insecure", "--witness", urls, "--witness-ttl", ttl, "trio"],
            stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(backup)}");
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        etcd.Kill(0);
        using var witness = new EtcdWitness(etcd.ClientUrls.Skip(1).ToArray()); // the members left
        // Several TTLs' worth of ticks after the kill: the lease was renewed through the other members (a lease not
        // renewed would stop the release within one TTL, with the backup alive, and the count would stall).
        int atKill = E2E.Lines(log);
        E2E.WaitUntil(() => E2E.Lines(log) >= atKill + 3 * TtlMs / Interval, "output is still released after a member was killed",
            details: () => Details(backup));
        var info = E2E.Single(_primary, "trio");
        Assert.Equal(vmm, info.Pid);
        Assert.True(info.Remus is { Protected: true, Fenced: false }, $"{System.Text.Json.JsonSerializer.Serialize(info.Remus)}\n{Details(backup)}");
        Assert.False(backup.HasExited, $"the backup ended while the primary ran\n{Details(backup)}");
        var holder = witness.Holder("trio");
        Assert.True(holder is { Role: "primary" } && holder.Pid == vmm, $"the key should still name the primary VMM {vmm}: {holder}\n{Details(backup)}");

        // Protection still works: a killed primary is taken over (after its lease expired) through the members left.
        var killedAt = Stopwatch.GetTimestamp();
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        backup.WaitForStderr("Remus failover for domain trio", TimeSpan.FromSeconds(30));
        var took = Stopwatch.GetElapsedTime(killedAt);
        output.WriteLine($"3-member etcd, one member down: primary SIGKILLed -> the backup's 'Remus failover' line after {took.TotalMilliseconds:F0} ms " +
                         $"(TTL {TtlMs} ms, interval {EpochMs} ms, backup --timeout 1000 ms)");
        Assert.Equal("backup", witness.Holder("trio")?.Role);
        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.True(status == 0, $"the backup's domain (the ticker) ended with status {status}\n{Details(backup)}");
        Assert.True(E2E.EndsWithDone(log), $"the ticker did not finish on the backup\n{Details(backup)}");
    }
}
