using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint.Volumes;

/// <summary>
/// Volumes under Remus protection (issue 10), against the replica interface only: a fake replica on the simulated
/// guest of the fault-injection tests, the real primary and backup over a loopback connection. The order of the calls
/// on both sides; nothing of a corrupt or cut epoch applied; a failure to apply refused without a takeover; a large
/// copy split over epochs with heartbeats keeping the backup from giving up.
/// </summary>
public class RemusVolumeTests
{
    private static readonly GuestConfig Guest = new() { Seed = 11, Pages = 48, DirtyPerStep = 2, StepsPerTick = 2 };
    private static readonly RemusOptions Fast = new() { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };

    private sealed class Setup : IDisposable
    {
        public readonly FakeVolumeReplica Sender;
        public readonly FakeVolumeReplica Receiver = new();
        public readonly VolumedDomain Primary;
        public readonly RemusPrimary Remus;
        public readonly RemusBackup Backup;
        public readonly Task<BackupOutcome> Watch;
        public readonly JournalTap? Tap;
        private readonly System.Net.Sockets.NetworkStream _a, _b;

        public Setup(Action<FakeVolumeReplica>? sender = null, Action<FakeVolumeReplica>? receiver = null, RemusOptions? primaryOptions = null,
            Func<System.IO.Stream, JournalTap>? tap = null, GuestConfig? guest = null)
        {
            var world = new RecordingConsole();
            var commit = new OutputCommitConsole(world);
            var sim = SimDomain.Boot(guest ?? Guest, commit, 0xa1);
            Sender = new FakeVolumeReplica { IsPaused = () => sim.State == DomainState.Paused };
            sender?.Invoke(Sender);
            receiver?.Invoke(Receiver);
            Primary = new VolumedDomain(sim, Sender);
            (_a, _b) = Channel.Pair();
            Tap = tap?.Invoke(_a);
            Remus = new RemusPrimary(Primary, commit, (System.IO.Stream?)Tap ?? _a, _a, primaryOptions ?? Fast);
            var log = Receiver.Log;
            Backup = new RemusBackup(_b, _b, Fast with
            {
                OnStep = (step, epoch) =>
                {
                    if (step == RemusStep.BackupReceived) lock (log) log.Add($"received {epoch}");
                    if (step == RemusStep.BackupApplied) lock (log) log.Add($"applied {epoch}");
                },
            });
            Watch = Task.Run(() => Backup.Watch(config =>
                new VolumedDomain(SimDomain.CreateIncoming(GuestConfig.FromJson(config.Span), new RecordingConsole()), Receiver)));
        }

        public BackupOutcome Outcome() =>
            Watch.Wait(TimeSpan.FromSeconds(60)) ? Watch.Result : throw new TimeoutException("the backup's watch did not end");

        public void Dispose()
        {
            Remus.Dispose();
            Watch.Wait(TimeSpan.FromSeconds(30));
            Backup.Domain?.Dispose();
            Primary.Dispose();
            _a.Dispose();
            _b.Dispose();
        }
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    /// <summary>The receiver's log cut at each "received N": one segment per epoch.</summary>
    private static List<List<string>> Epochs(string[] log)
    {
        var epochs = new List<List<string>>();
        foreach (var line in log)
        {
            if (line.StartsWith("received ")) epochs.Add([]);
            if (epochs.Count > 0) epochs[^1].Add(line);
        }
        return epochs;
    }

    private static void AssertAppliedInOrderAfterValidation(List<string> epoch)
    {
        int lastValidate = epoch.FindLastIndex(l => l.StartsWith("Validate "));
        int firstApply = epoch.FindIndex(l => l.StartsWith("Apply "));
        int lastApply = epoch.FindLastIndex(l => l.StartsWith("Apply "));
        if (firstApply >= 0) Assert.True(lastValidate < firstApply, $"a batch was applied before all of its epoch's batches were judged: {string.Join(", ", epoch)}");
        int load = epoch.IndexOf("LoadState");
        if (load >= 0)
        {
            Assert.True(lastApply < load, $"the state was loaded before the epoch's volumes were applied: {string.Join(", ", epoch)}");
            Assert.True(load < epoch.FindIndex(l => l.StartsWith("applied ")), string.Join(", ", epoch));
        }
    }

    [Fact]
    public void The_copy_runs_alongside_memory_then_each_pause_drains_the_journal_and_the_backup_applies_after_pages_before_state()
    {
        using var s = new Setup();
        s.Remus.Protect(Guest.ToJson());
        WaitFor(() => s.Backup.Checkpoints >= 6, "six checkpoints are acked");
        s.Remus.Dispose();
        Assert.Equal(BackupOutcome.Ended, s.Outcome());

        // The sender: BeginCopy paused (with the dirty log), copy rounds while running, the last round paused in the
        // first checkpoint's pause with BeginJournal, then one journal drain per pause, StopTracking when protection ends.
        string[] sent = s.Sender.Snapshot();
        Assert.Equal("BeginCopy (paused)", sent[0]);
        int journal = Array.IndexOf(sent, "BeginJournal (paused)");
        Assert.True(journal >= 3, string.Join(", ", sent));
        Assert.All(sent[1..journal], l => Assert.StartsWith("DrainCopy ", l));
        Assert.EndsWith("(paused)", sent[journal - 1]);
        Assert.DoesNotContain("(paused)", sent[1]); // the first round runs with the guest
        Assert.Equal("StopTracking", sent[^1]);
        Assert.All(sent[(journal + 1)..^1], l => Assert.Equal("DrainJournal (paused)", l));
        Assert.True(sent.Length - journal - 2 >= 5); // the first checkpoint took the last copy round instead

        // The receiver: every body applied exactly once, in the order sent; per epoch all judged first, then applied,
        // then the state loaded, then acked.
        Assert.Equal(s.Sender.Emitted, s.Receiver.Applied);
        var epochs = Epochs(s.Receiver.Snapshot());
        Assert.True(epochs.Count(e => e.Contains("LoadState")) >= 6);
        foreach (var epoch in epochs) AssertAppliedInOrderAfterValidation(epoch);
        Assert.Equal(0, s.Receiver.Commits); // the toolstack commits, after a takeover only
    }

    [Theory]
    [InlineData(RemusStep.Staged)]
    [InlineData(RemusStep.Resumed)]
    [InlineData(RemusStep.PagesSent)]
    [InlineData(RemusStep.EndSent)]
    [InlineData(RemusStep.Acked)]
    public void After_a_primary_crash_the_backups_volumes_are_exactly_those_of_the_checkpoint_it_fails_over_to(RemusStep at)
    {
        // The primary dies at a point of its 8th checkpoint. What the sender had drained by the pause of each
        // checkpoint is noted there; the backup's copy must hold exactly the bodies of the checkpoint it takes over.
        var drainedBy = new Dictionary<ulong, int>();
        FakeVolumeReplica? sender = null;
        int checkpoints = 0;
        ulong? crashEpoch = null;
        var options = Fast with
        {
            OnStep = (step, epoch) =>
            {
                if (step == RemusStep.Staged)
                {
                    lock (drainedBy) drainedBy[epoch] = sender!.Emitted.Count;
                    if (++checkpoints == 8) crashEpoch = epoch;
                }
                if (step == at && epoch == crashEpoch) throw new InvalidOperationException("the primary's host dies here");
            },
        };
        using var s = new Setup(sender: f => { sender = f; f.JournalDrain = (2, 300); }, primaryOptions: options);
        s.Remus.Protect(Guest.ToJson());
        Assert.Equal(BackupOutcome.Failover, s.Outcome());
        Assert.NotNull(s.Remus.Crash);
        ulong taken = s.Backup.LastCheckpoint!.Value;
        Assert.True(taken == crashEpoch || taken + 1 == crashEpoch, $"took over from {taken}, the crash was in {crashEpoch}");
        int expected;
        lock (drainedBy) expected = drainedBy[taken];
        Assert.Equal(s.Sender.Emitted.Take(expected), s.Receiver.Applied);
        var last = Epochs(s.Receiver.Snapshot()).Last(e => e.Contains("LoadState"));
        AssertAppliedInOrderAfterValidation(last);
    }

    [Fact]
    public void The_programs_last_volume_operations_travel_with_its_exit()
    {
        var exiting = Guest with { ExitAt = 3000 };
        using var s = new Setup(guest: exiting);
        s.Remus.Protect(exiting.ToJson());
        Assert.Equal(BackupOutcome.Ended, s.Outcome()); // EXIT acked, then END
        string[] sent = s.Sender.Snapshot();
        Assert.Equal("StopTracking", sent[^1]);
        Assert.StartsWith("Drain", sent[^2]); // the drain after the last checkpoint, for the exit epoch
        Assert.Equal(s.Sender.Emitted, s.Receiver.Applied);
        var last = Epochs(s.Receiver.Snapshot())[^1];
        Assert.Contains(last, l => l.StartsWith("Apply "));
        Assert.DoesNotContain("LoadState", last); // an exit epoch: nothing to load, nothing to run
        AssertAppliedInOrderAfterValidation(last);
    }

    [Fact]
    public void A_checkpoint_whose_volume_batch_arrives_corrupt_is_refused_whole_and_nothing_of_it_is_applied()
    {
        using var s = new Setup(sender: f => f.JournalDrain = (2, 48), tap: a => new JournalTap(a, 12, JournalTap.Fault.Corrupt));
        s.Remus.Protect(Guest.ToJson());
        Assert.Equal(BackupOutcome.Rejected, s.Outcome());
        uint hit = s.Tap!.HitSequence!.Value;
        // The damaged body and its epoch's other one: neither judged nor applied; everything before them was.
        Assert.DoesNotContain(hit, s.Receiver.Validated);
        Assert.DoesNotContain(hit - 1, s.Receiver.Validated);
        Assert.Equal(s.Sender.Emitted.TakeWhile(q => q < hit - 1), s.Receiver.Applied);
        Assert.Contains("corrupt", s.Backup.LossReason);
        WaitFor(() => !s.Remus.IsProtected, "the primary goes on unprotected");
        Assert.False(s.Remus.IsFenced);
        WaitFor(() => s.Sender.Stopped, "the sender stops tracking");
    }

    [Fact]
    public void A_checkpoint_cut_in_the_middle_of_its_volume_batch_is_not_applied_and_the_backup_fails_over_to_the_one_before()
    {
        using var s = new Setup(sender: f => f.JournalDrain = (2, 4096), tap: a => new JournalTap(a, 12, JournalTap.Fault.Cut));
        s.Remus.Protect(Guest.ToJson());
        Assert.Equal(BackupOutcome.Failover, s.Outcome());
        uint hit = s.Tap!.HitSequence!.Value;
        Assert.DoesNotContain(hit, s.Receiver.Validated);
        Assert.DoesNotContain(hit - 1, s.Receiver.Validated);
        Assert.Equal(s.Sender.Emitted.TakeWhile(q => q < hit - 1), s.Receiver.Applied);
        // The toolstack's step after a takeover: the copy built here becomes the volumes.
        s.Backup.CommitVolumes(TimeSpan.FromSeconds(1));
        Assert.Equal(1, s.Receiver.Commits);
        WaitFor(() => s.Sender.Stopped, "the fenced primary stops tracking");
    }

    [Fact]
    public void A_volume_batch_the_backup_cannot_apply_ends_protection_without_a_takeover()
    {
        using var s = new Setup(receiver: f => f.FailJournalApply = 7);
        s.Remus.Protect(Guest.ToJson());
        Assert.Equal(BackupOutcome.Rejected, s.Outcome()); // never Failover: this copy is inconsistent
        Assert.Contains("volume operations", s.Backup.LossReason);
        Assert.Contains("No space left on device", s.Backup.LossReason);
        Assert.Contains("Apply", s.Receiver.Snapshot().Last(l => l.StartsWith("Apply ")));
        Assert.EndsWith("failed", s.Receiver.Snapshot().Last(l => l.StartsWith("Apply ")));
        WaitFor(() => !s.Remus.IsProtected, "the primary goes on unprotected");
        Assert.False(s.Remus.IsFenced);
        Assert.Equal(DomainState.Running, s.Primary.State);
        WaitFor(() => s.Sender.Stopped, "the sender stops tracking");
    }

    [Fact]
    public void A_copy_round_failing_to_apply_during_the_initial_synchronisation_refuses_protection()
    {
        using var s = new Setup(receiver: f => f.FailCopyApply = 1);
        var e = Assert.Throws<ProtectionException>(() => s.Remus.Protect(Guest.ToJson()));
        Assert.Equal(BackupOutcome.Rejected, s.Outcome());
        Assert.Contains("volume operations", s.Backup.LossReason);
        Assert.False(s.Remus.IsProtected);
        Assert.False(s.Remus.IsFenced);
        Assert.NotNull(e.Message);
        WaitFor(() => s.Sender.Stopped, "the sender stops tracking");
    }

    [Fact]
    public void A_large_copy_is_split_over_epochs_and_heartbeats_keep_the_backup_waiting_while_a_slow_round_reads()
    {
        const int big = 64 << 10;
        int sleeping = 0, beatsWhileReading = 0;
        var options = Fast with
        {
            VolumeEpochBytes = 2 * big,
            OnStep = (step, _) => { if (step == RemusStep.Heartbeat && Volatile.Read(ref sleeping) == 1) Interlocked.Increment(ref beatsWhileReading); },
        };
        using var s = new Setup(sender: f =>
        {
            f.CopyRound = r => r == 0 ? (6, big) : (1, 64);
            // Reading the first round is slow: 1.5 x the backup's timeout between the two bodies of each epoch, three times.
            f.BetweenCopyBodies = (r, i) =>
            {
                if (r != 0 || i % 2 != 1) return; // inside an epoch: its first body is written, the second not yet
                Volatile.Write(ref sleeping, 1);
                Thread.Sleep(1500);
                Volatile.Write(ref sleeping, 0);
            };
        }, primaryOptions: options);
        s.Remus.Protect(Guest.ToJson()); // before the fix: the backup gave up during the copy and this threw
        WaitFor(() => s.Backup.Checkpoints >= 3, "three checkpoints are acked");
        s.Remus.Dispose();
        Assert.Equal(BackupOutcome.Ended, s.Outcome());
        Assert.True(beatsWhileReading >= 1, "no heartbeat while the copy was reading");

        // The six 64 KiB bodies of the first round (sequence 0..5) arrive in epochs of at most two, each applied at
        // its end, before the first checkpoint.
        var epochs = Epochs(s.Receiver.Snapshot());
        var perEpoch = epochs.Select(e => e.Count(l => l.StartsWith("Apply ") && uint.Parse(l[6..]) < 6)).Where(n => n > 0).ToList();
        Assert.Equal(6, perEpoch.Sum());
        Assert.True(perEpoch.Count >= 3, string.Join(", ", perEpoch));
        Assert.All(perEpoch, n => Assert.True(n <= 2));
        Assert.Equal(s.Sender.Emitted, s.Receiver.Applied);
    }
}
