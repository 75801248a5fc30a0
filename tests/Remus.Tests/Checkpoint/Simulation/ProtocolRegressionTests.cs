using Remus.Checkpoint.Remus;
using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>
/// Seeds the harness found breaking the guarantee against protocol version 1 (issue 15 findings 1, 2 and 4, and a
/// corrupt record length), one per scenario kind, named for what the protocol now guarantees there. Each must pass
/// three runs in a row (the seed fixes the faults, not the threads' interleaving). The two-way partition of live
/// hosts (a reset connection) is not here: it needs the witness (<see cref="ScenarioSets.NeedsWitness"/>, issue 12).
/// </summary>
public class ProtocolRegressionTests
{
    private static void Holds(Scenario scenario)
    {
        for (int i = 0; i < 3; i++)
        {
            var r = SimulationRun.Execute(scenario);
            // The lease (docs/stream-format.md §7.1) assumes no side stalls past the margin between a check and what
            // follows from it; a run in which this loaded test machine froze the process for more than half the
            // timeout did not test the protocol (both "hosts" share the process). Such a failed run is run again,
            // up to three times; a run that failed without a stall, or failed again, fails the test.
            for (int retry = 0; !r.Passed && r.MachineStalled && retry < 3; retry++) r = SimulationRun.Execute(scenario);
            Assert.True(r.Passed, r.Report());
        }
    }

    private static Scenario Seed(ScenarioKind kind, int seed) => Scenario.Make(kind, seed, SimProfile.Fast);

    // ---- finding 4: at exit and at stop, END before the held output is released

    [Fact]
    public void A_primary_dying_right_after_releasing_its_last_output_is_not_rerun_by_the_backup() =>
        Holds(Seed(ScenarioKind.PrimaryKilledAfterFinalRelease, 2023));

    [Fact]
    public void A_primary_dying_before_END_at_exit_does_not_make_the_backup_rerun_released_output() =>
        Holds(Seed(ScenarioKind.PrimaryKilledBeforeEndAtExit, 2008));

    [Fact]
    public void A_primary_dying_before_END_when_protection_stops_does_not_make_the_backup_rerun_released_output() =>
        Holds(Seed(ScenarioKind.PrimaryKilledBeforeEndAtStop, 1));

    // ---- finding 1: a primary that gives up tells the backup (RELEASE) and waits; a backup that takes over fences it

    [Fact]
    public void A_backup_stopped_past_the_timeout_does_not_take_over_beside_a_primary_that_runs_on() =>
        Holds(Seed(ScenarioKind.BackupStalledPastTimeout, 2029) with { Step = RemusStep.BackupAcked, Epoch = 2 });

    [Fact]
    public void A_primary_stopped_past_the_timeout_is_fenced_and_releases_nothing_beside_the_backup() =>
        Holds(Seed(ScenarioKind.PrimaryStalledPastTimeout, 2074) with { Step = RemusStep.Acked, Epoch = 2 });

    [Fact]
    public void Lost_acks_leave_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.AcksCut, 2025));

    [Fact]
    public void Lost_epochs_leave_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.EpochsCut, 2044));

    [Fact]
    public void Acks_held_past_the_timeout_leave_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.AcksDelayedPastTimeout, 2060));

    [Fact]
    public void Epochs_held_past_the_timeout_leave_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.EpochsDelayedPastTimeout, 2007));

    [Fact]
    public void A_closed_ack_direction_leaves_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.AckStreamClosed, 2012));

    [Fact]
    public void A_closed_epoch_direction_leaves_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.EpochStreamClosed, 2005));

    /// <summary>
    /// Found in CI (seed 2005 of EpochStreamClosed): the epoch direction closed right after the backup acked a
    /// checkpoint; the backup read EOF, took over and re-emitted that checkpoint's output and ran on, and only then
    /// did the primary — alive, the ACK in hand — release the same output, after the new copy's lines. Pinned here: the
    /// close comes as the primary reads the ack, and the primary is held 18 ms (inside the 20 ms margin) between the ack and its
    /// release. A backup that takes over on EOF now waits T after its last ACK before it re-emits anything.
    /// </summary>
    [Fact]
    public void A_closed_epoch_direction_right_after_an_ack_does_not_let_the_backup_emit_before_the_primary_releases()
    {
        var close = Seed(ScenarioKind.EpochStreamClosed, 2005) with { ClosesAtPrimaryAck = true, Epoch = 2 };
        var stall = Seed(ScenarioKind.PrimaryStalledBriefly, 2005) with
        {
            Step = RemusStep.Acked, Epoch = 2, Duration = TimeSpan.FromMilliseconds(18),
            Guest = close.Guest, Interval = close.Interval, Timeout = close.Timeout, HotPageEpochs = close.HotPageEpochs,
            Compress = close.Compress, HeadStart = close.HeadStart,
        };
        Holds(close with { Kind = ScenarioKind.TwoFaults, Combined = [close, stall] });
    }

    [Fact]
    public void A_wrong_ack_leaves_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.AckCorrupted, 2002));

    /// <summary>
    /// Found by the harness (seed 11071 of a 3000-seed run): a flipped bit in a record's length made the backup wait
    /// for 24 KiB that never came, swallowing RELEASE; the stream then ended and the backup took it for a dead
    /// primary. A version 2 record header carries its own checksum: the backup refuses the stream at once.
    /// </summary>
    [Fact]
    public void A_corrupt_record_length_is_refused_at_once_and_no_second_copy_runs() =>
        Holds(Seed(ScenarioKind.EpochRecordHeaderCorrupted, 11071) with { Epoch = 4, Offset = 5, Mask = 0x60 });

    [Fact]
    public void A_truncated_epoch_leaves_one_copy_releasing_output() =>
        Holds(Seed(ScenarioKind.EpochTruncated, 2027));

    // ---- finding 2: heartbeats flow between epochs

    [Fact]
    public void An_interval_longer_than_the_timeout_does_not_make_the_backup_take_over_a_healthy_primary() =>
        Holds(Seed(ScenarioKind.IntervalLongerThanTimeout, 2006));

    // ---- what the guarantee leaves to the witness

    [Fact]
    public void A_reset_connection_and_a_partition_of_both_directions_need_the_witness_and_nothing_else_does()
    {
        Assert.True(ScenarioSets.IsTwoWayPartition(Seed(ScenarioKind.ConnectionReset, 1)));
        Assert.DoesNotContain(ScenarioKind.ConnectionReset, ScenarioSets.Ci);
        var twoFaults = Enumerable.Range(1, 400).Select(s => Seed(ScenarioKind.TwoFaults, s)).ToList();
        Assert.Contains(twoFaults, ScenarioSets.IsTwoWayPartition);
        Assert.Contains(twoFaults, ScenarioSets.IsCovered);
        foreach (var s in twoFaults)
        {
            var kinds = s.Faults.Select(f => f.Kind).ToList();
            bool bothCut = kinds.Contains(ScenarioKind.ConnectionReset)
                || (kinds.Any(k => k is ScenarioKind.EpochsCut or ScenarioKind.EpochStreamClosed or ScenarioKind.EpochTruncated or ScenarioKind.EpochsDelayedPastTimeout)
                    && kinds.Any(k => k is ScenarioKind.AcksCut or ScenarioKind.AckStreamClosed or ScenarioKind.AcksDelayedPastTimeout));
            Assert.Equal(bothCut, ScenarioSets.IsTwoWayPartition(s));
        }
        foreach (var kind in Scenario.AllKinds.Except([ScenarioKind.ConnectionReset, ScenarioKind.TwoFaults]))
            Assert.False(ScenarioSets.IsTwoWayPartition(Seed(kind, 7)), kind.ToString());
    }
}
