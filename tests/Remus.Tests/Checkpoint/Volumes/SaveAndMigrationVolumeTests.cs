using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Sandbox.Volumes;
using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint.Volumes;

/// <summary>
/// Volumes in a save file and in a live migration (issue 10), against a fake replica on the simulated guest: the same
/// copy rounds as Remus's initial synchronisation, large copies split into epochs, each epoch's volume batches
/// applied by the receiver after its pages and before its state; the commit is left to the caller.
/// </summary>
public class SaveAndMigrationVolumeTests
{
    private static readonly GuestConfig Guest = new() { Seed = 5, Pages = 40, DirtyPerStep = 2, StepsPerTick = 2 };

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest made no progress");
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void A_save_file_carries_every_volume_split_into_epochs_and_a_restore_applies_them_before_the_state()
    {
        using var sim = SimDomain.Boot(Guest, new RecordingConsole(), 0xb2);
        var sender = new FakeVolumeReplica { IsPaused = () => sim.State == DomainState.Paused };
        // 17 batches of the largest size: more than one epoch's 64 MiB.
        sender.CopyRound = _ => (17, IVolumeReplica.MaxBatchBytes);
        var source = new VolumedDomain(sim, sender);
        WaitFor(() => sim.Progress > 20);
        source.Pause();
        var file = new MemoryStream();
        var saved = DomainSave.Save(source, file, Guest.ToJson());
        Assert.Equal(["BeginCopy (paused)", "DrainCopy 0 (paused)", "StopTracking"], sender.Snapshot()); // one paused round
        Assert.True(saved.Bytes > 17L * IVolumeReplica.MaxBatchBytes);

        // The file: two epochs, the first only volume batches (at most 64 MiB and one batch), the last with the state.
        var reader = new CheckpointReader(new MemoryStream(file.ToArray()));
        reader.ReadHeader();
        var epochs = new List<(int Batches, long Bytes, bool State)>();
        while (reader.ReadEpoch() is { } epoch)
            using (epoch) epochs.Add((epoch.VolumeBatchCount, epoch.VolumeBytes, epoch.KernelState != null));
        Assert.Equal(2, epochs.Count);
        Assert.Equal(17, epochs.Sum(e => e.Batches));
        Assert.All(epochs, e => Assert.True(e.Bytes <= VolumeCopy.DefaultEpochBytes + IVolumeReplica.MaxBatchBytes));
        Assert.Equal([false, true], epochs.Select(e => e.State));

        var receiver = new FakeVolumeReplica();
        file.Position = 0;
        using var restored = DomainSave.Restore(file, config =>
            new VolumedDomain(SimDomain.CreateIncoming(GuestConfig.FromJson(config.Span), new RecordingConsole()), receiver));
        Assert.Equal(sender.Emitted, receiver.Applied);
        string[] log = receiver.Snapshot();
        Assert.Equal("LoadState", log[^1]); // every batch applied before the state
        Assert.Equal(sender.Emitted, receiver.Validated);
        // Epoch by epoch: its 16 batches judged, then applied; then the last one's single batch; then the state.
        Assert.Equal(Enumerable.Repeat("V", 16).Concat(Enumerable.Repeat("A", 16)).Concat(["V", "A", "L"]),
            log.Select(l => l[..1]));
        Assert.Equal(sim.Counter, restored.Sim.Counter);
        Assert.Null(restored.Sim.Incoherence());
        Assert.Equal(0, receiver.Commits); // the caller's step
        restored.Volumes!.Commit(TimeSpan.Zero, null);
        Assert.Equal(1, receiver.Commits);
    }

    [Fact]
    public void A_migration_copies_volumes_in_rounds_the_last_one_paused_and_the_target_applies_each_epoch_before_the_state()
    {
        var (a, b) = Channel.Pair();
        using var _a = a;
        using var _b = b;
        using var sim = SimDomain.Boot(Guest, new RecordingConsole(), 0xc3);
        var sender = new FakeVolumeReplica { IsPaused = () => sim.State == DomainState.Paused };
        sender.CopyRound = r => r == 0 ? (3, 100_000) : (1, 64);
        var source = new VolumedDomain(sim, sender);
        WaitFor(() => sim.Progress > 20);

        var receiver = new FakeVolumeReplica();
        var target = new MigrationReceiver(b, b);
        var arrived = Task.Run(() => target.Receive(config =>
            new VolumedDomain(SimDomain.CreateIncoming(GuestConfig.FromJson(config.Span), new RecordingConsole()), receiver)));
        var migration = new MigrationSender(source, a, a, new MigrationOptions());
        var result = Task.Run(() =>
        {
            try { return migration.Migrate(Guest.ToJson()); }
            finally { if (!migration.HandedOver) a.Socket.Close(); }
        });
        Assert.True(arrived.Wait(TimeSpan.FromSeconds(30)), "the target did not get the domain");
        using var moved = arrived.Result;
        target.ConfirmRunning();
        Assert.True(result.Wait(TimeSpan.FromSeconds(30)));

        string[] sent = sender.Snapshot();
        Assert.Equal("BeginCopy (paused)", sent[0]);
        Assert.Equal("StopTracking", sent[^1]);
        Assert.All(sent[1..^1], l => Assert.StartsWith("DrainCopy ", l));
        Assert.True(sent.Length >= 4, string.Join(", ", sent)); // at least one round running, the last one paused
        Assert.DoesNotContain("(paused)", sent[1]);
        Assert.EndsWith("(paused)", sent[^2]);
        Assert.DoesNotContain("BeginJournal", sent);

        Assert.Equal(sender.Emitted, receiver.Applied);
        string[] log = receiver.Snapshot();
        Assert.Equal("LoadState", log[^1]);
        Assert.Equal(sim.Counter, moved.Sim.Counter);
        Assert.Equal(0, receiver.Commits);
    }
}
