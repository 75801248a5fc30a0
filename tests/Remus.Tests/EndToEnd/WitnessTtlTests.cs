using System.Diagnostics;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack.Witness;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// A killed primary with a sub-second --witness-ttl and a short backup --timeout (issue 12 item 4 (b)): the backup must
/// still take over. etcd grants leases in whole seconds (EtcdKeys.TtlSeconds rounds 200 ms up to 1 s) and expires them
/// about every 500 ms, so the dead primary's key stays 1-1.5 s; the backup's bound (3 x TTL + T = 800 ms here) ends
/// before that, and it declines a dead primary: the domain is lost. Seen red (the backup said "still holds the witness
/// key"); skipped until the bound is computed from the TTL etcd granted (or sub-second TTLs are refused).
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class WitnessTtlTests(ITestOutputHelper output) : IDisposable
{
    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
    }

    private string Details(Receiver? receiver) => $"{receiver?.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";

    [SkippableFact]
    public void A_killed_primary_is_taken_over_with_a_sub_second_ttl_and_a_short_timeout()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        string url = etcd.ClientUrls[0];
        string log = Path.Combine(_primary.Work, "short.log");
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--timeout", "200", "--witness", url, "--witness-ttl", "200");
        int vmm = E2E.VmmPid(_primary.Ok("create", Ticker.Config(_primary, "short", 600, 10, 1, log)));
        var protect = _primary.Remus(["protect", "-i", "20", "--tcp", $"127.0.0.1:{port}", "--insecure", "--witness", url, "--witness-ttl", "200", "short"],
            stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(backup)}");
        E2E.WaitUntil(() => E2E.Lines(log) >= 20, "the protected program's output is released");

        var killedAt = Stopwatch.GetTimestamp();
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        backup.WaitForStderr("Remus failover for domain short", TimeSpan.FromSeconds(30));
        output.WriteLine($"TTL 200 ms, --timeout 200 ms: primary SIGKILLed -> 'Remus failover' after {Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds:F0} ms");
        int status = backup.WaitForExit(TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.True(status == 0, $"the backup's domain (the ticker) ended with status {status}\n{Details(backup)}");
        Assert.True(E2E.EndsWithDone(log), $"the ticker did not finish on the backup\n{Details(backup)}");
    }
}
