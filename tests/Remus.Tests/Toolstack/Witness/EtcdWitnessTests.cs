using System.Diagnostics;
using Remus.Checkpoint.Witness;
using Remus.Tests.Support;
using Remus.Toolstack.Witness;
using Xunit;

namespace Remus.Tests.Toolstack.Witness;

/// <summary>
/// The etcd witness against real etcd members on loopback (issue 12): the key is taken only when free, renewals keep
/// it, a holder cut off from etcd stops counting its lease valid before anyone else can take the key, a 3-member
/// cluster survives a killed member, and unreachable endpoints give a clear error. No timing is asserted: the tests
/// wait for states (with a bound that only catches hangs) and check orderings on the one monotonic clock.
/// </summary>
public sealed class EtcdWitnessTests
{
    // 2 s, not 1: on a loaded 2-core machine a stall of a whole TTL between a grant and its first use is not unheard of.
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);
    private static readonly WitnessHolder A = new("host-a", 1111, "primary");
    private static readonly WitnessHolder B = new("host-b", 2222, "backup");
    private static long TtlTicks => (long)(Ttl.TotalSeconds * Stopwatch.Frequency);

    [SkippableFact]
    public void Acquire_PutsTheHolderUnderTheKey_AndDisposeRevokesIt()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witness = new EtcdWitness(etcd.ClientUrls);
        var lease = witness.Acquire("tick", A, Ttl, CancellationToken.None);
        Assert.True(Stopwatch.GetTimestamp() < lease.ValidUntil);
        Assert.False(lease.Lost);
        var holder = witness.Holder("tick");
        Assert.NotNull(holder);
        Assert.Equal(("host-a", 1111, "primary"), (holder.Host, holder.Pid, holder.Role));
        Assert.Contains("\"host\":\"host-a\"", etcd.Etcdctl("get", "/remus/domains/tick/active", "--print-value-only"));
        lease.Dispose();
        Assert.Null(witness.Holder("tick"));
    }

    [SkippableFact]
    public void Renewals_KeepTheKey_ForManyTtls()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var lease = witness.Acquire("tick", A, Ttl, CancellationToken.None);
        long first = lease.ValidUntil;
        // Renewals confirmed for 4 TTLs past the first: without the keep-alive the key would be gone after one.
        WaitUntil(() => lease.ValidUntil > first + 4 * TtlTicks, "the lease was renewed for 4 TTLs");
        Assert.False(lease.Lost);
        Assert.Null(witness.TryAcquire("tick", B, Ttl, CancellationToken.None));
        Assert.Equal("host-a", witness.Holder("tick")?.Host);
    }

    [SkippableFact]
    public void AnotherHost_CannotTakeAHeldKey_AndIsToldWhoHoldsIt()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witnessA = new EtcdWitness(etcd.ClientUrls);
        using var witnessB = new EtcdWitness(etcd.ClientUrls);
        using var lease = witnessA.Acquire("tick", A, Ttl, CancellationToken.None);
        var e = Assert.Throws<WitnessException>(() => witnessB.Acquire("tick", B, Ttl, CancellationToken.None));
        Assert.Contains("host host-a", e.Message);
        Assert.Contains("pid 1111", e.Message);
        Assert.Null(witnessB.TryAcquire("tick", B, Ttl, CancellationToken.None));
        Assert.Equal(1111, witnessA.Holder("tick")?.Pid);
    }

    [SkippableFact]
    public void SameHost_TakesOverTheKeyItLeft()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        // What a `protect` on host-a that was killed leaves: its key under a lease that has not run out yet.
        string grant = etcd.Etcdctl("lease", "grant", "60");
        string leaseId = grant.Split(' ')[1];
        etcd.Etcdctl("put", "--lease=" + leaseId, "/remus/domains/tick/active",
            """{"host":"host-a","pid":999,"role":"primary","epoch":5,"time":"2026-11-28T05:00:00Z"}""");
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var lease = witness.Acquire("tick", A, Ttl, CancellationToken.None);
        Assert.Equal(1111, witness.Holder("tick")?.Pid);
        // ...and another host's leftover is not taken over.
        Assert.Throws<WitnessException>(() => witness.Acquire("tick", B, Ttl, CancellationToken.None));
    }

    [SkippableFact]
    public void HolderCutOffFromEtcd_StopsCountingItsLeaseValid_BeforeAnotherCopyCanTakeTheKey_AndIsLostWhenBack()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var relay = new EtcdRelay(etcd.ClientUrls[0]);
        using var witnessA = new EtcdWitness([relay.Url]);
        using var witnessB = new EtcdWitness(etcd.ClientUrls);
        using var leaseA = witnessA.Acquire("tick", A, Ttl, CancellationToken.None);
        long first = leaseA.ValidUntil;
        WaitUntil(() => leaseA.ValidUntil > first, "A renewed its lease once");

        relay.Cut();
        IWitnessLease? leaseB = null;
        long bTried = 0;
        WaitUntil(() =>
        {
            bTried = Stopwatch.GetTimestamp();
            leaseB = witnessB.TryAcquire("tick", B, Ttl, CancellationToken.None);
            return leaseB is not null;
        }, "B took the key after A's lease expired", pause: Ttl / 4);
        using (leaseB)
        {
            // The guarantee: A counted its lease valid only up to a moment before B's successful attempt began.
            Assert.True(leaseA.ValidUntil < bTried,
                $"A's lease was valid until {(leaseA.ValidUntil - bTried) * 1000.0 / Stopwatch.Frequency:F0} ms after B began taking the key");
            Assert.False(leaseA.Lost); // it cannot know yet: it cannot reach etcd
            Assert.Equal("host-b", witnessB.Holder("tick")?.Host);

            relay.Restore();
            WaitUntil(() => leaseA.Lost, "A, back in touch with etcd, sees its lease lost");
            Assert.True(leaseA.ValidUntil < Stopwatch.GetTimestamp());
            Assert.False(leaseB!.Lost);
            Assert.Equal("host-b", witnessB.Holder("tick")?.Host);
        }
    }

    [SkippableFact]
    public void ThreeMembers_TheMemberInUseKilled_TheLeaseStaysAlive()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster(3);
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var lease = witness.Acquire("tick", A, Ttl, CancellationToken.None);
        long first = lease.ValidUntil;
        WaitUntil(() => lease.ValidUntil > first, "the lease was renewed once through member 0");

        etcd.Kill(0); // the member the client talks to (the first URL, as long as it answers)
        long killed = Stopwatch.GetTimestamp();
        // Renewals sent after the kill confirmed for 3 TTLs: the lease never lapsed for good.
        WaitUntil(() => lease.ValidUntil > killed + 3 * TtlTicks, "renewals through the other members for 3 TTLs");
        Assert.False(lease.Lost);
        using var other = new EtcdWitness(etcd.ClientUrls.Skip(1).ToArray());
        Assert.Equal("host-a", other.Holder("tick")?.Host);
        Assert.Null(other.TryAcquire("tick", B, Ttl, CancellationToken.None));
    }

    [Fact]
    public void UnreachableEndpoints_GiveAClearWitnessException()
    {
        string[] urls = [$"http://127.0.0.1:{EtcdCluster.FreePort()}", $"http://127.0.0.1:{EtcdCluster.FreePort()}"];
        using var witness = new EtcdWitness(urls);
        var e = Assert.Throws<WitnessException>(() => witness.Acquire("tick", A, Ttl, CancellationToken.None));
        Assert.Contains("witness unreachable", e.Message);
        foreach (var url in urls) Assert.Contains(url, e.Message);
        Assert.Null(witness.TryAcquire("tick", B, Ttl, CancellationToken.None));
    }

    [SkippableFact]
    public void ListDomains_ShowsEveryHeldDomain_WithItsHolderEpochAndLeaseLeft()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var alpha = witness.Acquire("alpha", A, Ttl, CancellationToken.None);
        using var beta = witness.Acquire("beta", B, Ttl, CancellationToken.None);
        beta.NoteEpoch(7);
        WaitUntil(() => witness.Holder("beta")?.Epoch == 7, "the noted epoch reached the key with a renewal");
        var rows = witness.ListDomains();
        Assert.Equal(["alpha", "beta"], rows.Select(r => r.Name));
        Assert.Equal(("host-a", 1111, "primary", 0UL), (rows[0].Host!, rows[0].Pid!.Value, rows[0].Role!, rows[0].Epoch!.Value));
        Assert.Equal(("host-b", 2222, "backup", 7UL), (rows[1].Host!, rows[1].Pid!.Value, rows[1].Role!, rows[1].Epoch!.Value));
        Assert.All(rows, r => Assert.Equal(2, r.LeaseTtlSeconds));
        Assert.All(rows, r => Assert.InRange(r.LeaseSecondsLeft!.Value, 0, 2));
    }

    [SkippableFact]
    public void BeginUnprotected_InvalidatesTheLeaseUntilTheUnprotectedMarkerIsConfirmed_AndThenNoBackupCanTakeOver()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witnessA = new EtcdWitness(etcd.ClientUrls);
        using var witnessB = new EtcdWitness(etcd.ClientUrls);
        var leaseA = witnessA.Acquire("tick", A, Ttl, CancellationToken.None);
        leaseA.BeginUnprotected(); // what the primary does when it gives up on its backup
        Assert.True(leaseA.ValidUntil < Stopwatch.GetTimestamp()); // at once, before the witness heard of it
        long lostAt = Stopwatch.GetTimestamp();
        WaitUntil(() => leaseA.ValidUntil > lostAt, "the lease is valid again once the marker is confirmed");
        Assert.Contains("\"host\":\"host-a\"", etcd.Etcdctl("get", "/remus/domains/tick/unprotected", "--print-value-only"));

        leaseA.Dispose(); // the key goes at once; the marker stays
        Assert.Null(witnessB.Holder("tick"));
        Assert.Null(witnessB.TryAcquire("tick", B, Ttl, CancellationToken.None)); // its checkpoint is older than what was released

        using var again = witnessA.Acquire("tick", A, Ttl, CancellationToken.None); // a new protection clears the marker
        Assert.Equal("", etcd.Etcdctl("get", "/remus/domains/tick/unprotected", "--print-value-only").Trim());
    }

    private static void WaitUntil(Func<bool> condition, string what, TimeSpan? pause = null)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Scaled(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"timed out waiting until {what}");
            Thread.Sleep(pause ?? TimeSpan.FromMilliseconds(20));
        }
    }
}
