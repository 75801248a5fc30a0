using System.Diagnostics;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Xunit;
using static Remus.Tests.Checkpoint.Witness.WitnessPair;

namespace Remus.Tests.Checkpoint.Witness;

/// <summary>
/// The witness rules in the engine (issue 12, docs/witness.md), with a fake etcd whose lease the test can expire,
/// steal or partition, and a replication channel it can cut: one copy of the domain is active at a time, and output
/// reaches the world only from the copy whose lease is certainly valid.
/// </summary>
public class WitnessRulesTests
{
    // (a)
    [Fact]
    public void A_cut_channel_with_the_witness_reachable_leaves_only_the_primary_running()
    {
        using var p = new WitnessPair(400);
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());
        WaitFor(() => p.PrimaryWorld.Lines >= 30, "30 ticks are out");

        p.CutChannel();
        var outcome = p.Outcome();
        Assert.Equal(BackupOutcome.Declined, outcome); // without the witness rule: Failover, two copies
        Assert.Null(p.Backup.Domain);
        Assert.Null(p.Backup.Lease);
        Assert.Contains("the primary still holds the witness key for domain tick (host-a, pid 101): not taking over", p.Backup.LossReason);
        Assert.Equal(PrimaryHolder, p.Etcd.Holder(Domain));
        Assert.True(p.Etcd.Epoch(Domain) > 0); // the primary notes its committed epochs in the key

        Assert.Equal(0, p.PrimaryDomain.Wait(TimeSpan.FromSeconds(60)));
        Assert.False(p.Primary.IsFenced);
        Assert.False(p.Primary.IsWitnessPaused);
        Assert.NotNull(p.UnprotectedReason);
        Assert.Equal(1, p.PrimaryWitness.UnprotectedMarks); // the witness learns the domain runs unprotected
        Assert.Equal(p.Native, p.PrimaryWorld.Text); // all of it, once, from the primary alone
        Assert.Equal("", p.BackupWorld.Text);
        Assert.DoesNotContain(p.Etcd.Acquisitions, x => x.Holder == BackupHolder);
    }

    [Fact]
    public void Unprotected_the_domain_pauses_while_its_lease_is_not_valid_and_resumes_with_nothing_lost_when_it_is()
    {
        // The cluster keeps leases 30 s beyond the TTL, so the primary's lease outlives its outage below.
        using var p = new WitnessPair(400, etcd: new FakeEtcd { ServerExtra = TimeSpan.FromSeconds(30) });
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());
        WaitFor(() => p.PrimaryWorld.Lines >= 30, "30 ticks are out");
        p.CutChannel();
        WaitFor(() => p.UnprotectedReason != null, "the primary gives up on its backup");
        Assert.False(p.Primary.IsWitnessPaused); // the witness is reachable: on unprotected

        p.PrimaryWitness.Unreachable = true;
        WaitFor(() => p.Primary.IsWitnessPaused, "the primary pauses once its lease is no longer certainly valid");
        Assert.Equal(DomainState.Paused, p.PrimaryDomain.Domain.State);
        p.Primary.Unpause(); // the user's unpause does not override the witness
        Assert.Equal(DomainState.Paused, p.PrimaryDomain.Domain.State);
        Assert.Equal(BackupOutcome.Declined, p.Outcome()); // the key is the primary's all along

        p.PrimaryWitness.Unreachable = false;
        WaitFor(() => !p.Primary.IsWitnessPaused, "a renewal is confirmed and the domain resumes");
        Assert.Equal(0, p.PrimaryDomain.Wait(TimeSpan.FromSeconds(60)));
        Assert.False(p.Primary.IsFenced);
        Assert.Equal(p.Native, p.PrimaryWorld.Text); // what was held in the outage came out, once, in order
        Assert.Equal("", p.BackupWorld.Text);
    }

    // (b)
    [Fact]
    public void A_dead_primary_is_taken_over_once_its_lease_has_expired()
    {
        WitnessPair? pair = null;
        int staged = 0;
        long validAtDeath = 0;
        using var p = pair = new WitnessPair(300, primary: o => o with
        {
            OnStep = (step, _) =>
            {
                if (step != RemusStep.Staged || Interlocked.Increment(ref staged) != 40) return;
                // The primary's process dies here: its keep-alives stop, its socket closes.
                pair!.PrimaryWitness.Unreachable = true;
                validAtDeath = pair.Primary.WitnessLease!.ValidUntil;
                pair.PrimarySocket.Socket.Close();
                throw new InvalidOperationException("killed");
            },
        });
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());

        Assert.Equal(BackupOutcome.Failover, p.Outcome());
        Assert.NotNull(p.Primary.Crash);
        Assert.NotNull(p.Backup.Lease);
        Assert.Equal(BackupHolder, p.Etcd.Holder(Domain));
        // The backup took the key only once the dead primary's lease had certainly run out.
        Assert.True(p.BackupAcquiredAt >= validAtDeath);
        Assert.Contains(p.BackupLog, l => l.Contains("took the witness key of domain 'tick'"));

        Assert.Equal(0, p.RunTakeover());
        Continuity.AssertNoGapAtMostOneEpochRepeated(p.Native, p.PrimaryWorld.Text + p.BackupWorld.Text);
    }

    [Fact]
    public void A_backup_that_cannot_reach_the_witness_does_not_take_over_even_from_a_dead_primary()
    {
        WitnessPair? pair = null;
        int staged = 0;
        using var p = pair = new WitnessPair(300, primary: o => o with
        {
            OnStep = (step, _) =>
            {
                if (step != RemusStep.Staged || Interlocked.Increment(ref staged) != 40) return;
                pair!.PrimaryWitness.Unreachable = true;
                pair.PrimarySocket.Socket.Close();
                throw new InvalidOperationException("killed");
            },
        });
        p.BackupWitness.Unreachable = true; // no key can be had: no takeover (fail-stop, never two copies)
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());

        Assert.Equal(BackupOutcome.Declined, p.Outcome());
        Assert.Null(p.Backup.Domain);
        Assert.Contains("not taking over", p.Backup.LossReason);
        Assert.Equal("", p.BackupWorld.Text);
        Assert.DoesNotContain(p.Etcd.Acquisitions, x => x.Holder == BackupHolder);
    }

    // (c) and (d)
    [Fact]
    public void A_primary_cut_from_backup_and_witness_stops_releasing_before_the_backup_takes_over_and_is_fenced_on_return()
    {
        using var p = new WitnessPair(400);
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());
        WaitFor(() => p.PrimaryWorld.Lines >= 30, "30 ticks are out");

        // The primary's host is cut off from everything; both hosts live.
        p.PrimaryWitness.Unreachable = true;
        p.CutChannel();

        Assert.Equal(BackupOutcome.Failover, p.Outcome());
        long acquired = p.BackupAcquiredAt!.Value;
        WaitFor(() => p.Primary.IsWitnessPaused, "the primary, its backup lost and its lease not valid, pauses its domain");
        Assert.Equal(DomainState.Paused, p.PrimaryDomain.Domain.State);
        Assert.False(p.Primary.IsFenced); // it cannot know yet

        Assert.Equal(0, p.RunTakeover());
        // Never both at once: everything the primary let out reached the world before the backup held the key, and
        // the backup let out nothing before it held it.
        long lastPrimary = p.PrimaryWorld.LastAt!.Value, firstBackup = p.BackupWorld.FirstAt!.Value;
        Assert.True(lastPrimary < acquired,
            $"the primary released output {Ms(lastPrimary - acquired):F1} ms after the backup took the key");
        Assert.True(firstBackup > acquired);
        Continuity.AssertNoGapAtMostOneEpochRepeated(p.Native, p.PrimaryWorld.Text + p.BackupWorld.Text);
        int primaryLines = p.PrimaryWorld.Lines;

        // (d) The partition heals: the old primary's keep-alive finds the key under the backup's lease: fenced.
        p.PrimaryWitness.Unreachable = false;
        WaitFor(() => p.FencedReason != null, "the old primary learns that its key is taken");
        Assert.True(p.Primary.IsFenced);
        Assert.True(p.Commit.IsFenced);
        Assert.Contains("another copy holds the witness key of domain 'tick'", p.FencedReason);
        Assert.Equal(DomainState.Paused, p.PrimaryDomain.Domain.State);
        Assert.Throws<InvalidOperationException>(p.Primary.Unpause);
        Assert.Equal(primaryLines, p.PrimaryWorld.Lines); // its held output was dropped, never released
        Assert.Equal(BackupHolder, p.Etcd.Holder(Domain));
    }

    // (d)
    [Fact]
    public void A_primary_that_finds_its_key_taken_is_fenced_and_its_backup_does_not_take_over()
    {
        using var p = new WitnessPair(400);
        p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray());
        WaitFor(() => p.PrimaryWorld.Lines >= 30, "30 ticks are out");

        p.Etcd.Steal(Domain, new("host-c", 303, "backup"));
        WaitFor(() => p.FencedReason != null, "the primary learns that its key is taken");
        Assert.True(p.Primary.IsFenced);
        Assert.False(p.Primary.IsProtected);
        Assert.Contains("another copy holds the witness key of domain 'tick'", p.FencedReason);
        Assert.Equal(DomainState.Paused, p.PrimaryDomain.Domain.State);
        Assert.Throws<InvalidOperationException>(p.Primary.Unpause);
        int lines = p.PrimaryWorld.Lines;

        // Its backup hears nothing more, finds the key held by host-c, and stands down.
        Assert.Equal(BackupOutcome.Declined, p.Outcome());
        Assert.Contains("(host-c, pid 303)", p.Backup.LossReason);
        Assert.Null(p.Backup.Domain);
        Assert.Equal(lines, p.PrimaryWorld.Lines);
        Assert.Equal("", p.BackupWorld.Text);
    }

    // (e)
    [Fact]
    public void Protect_with_the_witness_unreachable_fails_clearly_and_the_domain_runs_on_untouched()
    {
        using var p = new WitnessPair(100);
        p.PrimaryWitness.Unreachable = true;
        var e = Assert.Throws<ProtectionException>(() => p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray()));
        Assert.Contains("cannot take the witness key of domain 'tick'", e.Message);
        Assert.Contains("cannot reach the witness at fake://etcd", e.Message);
        Assert.False(p.Primary.IsProtected);
        Assert.Null(p.Primary.WitnessLease);
        Assert.Equal(BackupOutcome.Released, p.Outcome()); // told RELEASE: nothing to take over
        Assert.Equal(0, p.PrimaryDomain.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal(p.Native, p.PrimaryWorld.Text);
        Assert.Empty(p.Etcd.Acquisitions);
    }

    [Fact]
    public void Protect_while_another_copy_holds_the_key_names_it()
    {
        using var p = new WitnessPair(100);
        p.Etcd.Steal(Domain, new("host-c", 303, "primary"));
        var e = Assert.Throws<ProtectionException>(() => p.Primary.Protect("{\"name\":\"tick\"}"u8.ToArray()));
        Assert.Contains("active on host-c (pid 303", e.Message);
        Assert.Equal(BackupOutcome.Released, p.Outcome());
        Assert.Equal(0, p.PrimaryDomain.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal(p.Native, p.PrimaryWorld.Text);
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
