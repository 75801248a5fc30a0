using Xunit;
using Remus.Sandbox.Volumes;

namespace Remus.Tests.Volumes;

/// <summary>
/// Seeded random histories: what a receiver builds from the VOLUME_OPS bodies equals the primary's tree (names,
/// types, modes, data, symlink targets, hard links) — replayed from the journal, and by copy rounds taken while the
/// tree changes between and during them.
/// </summary>
public sealed class VolumeReplicationPropertyTests
{
    /// <summary>Seeds run every time (120 more passed once while this was written: widen the range to hunt).</summary>
    public static IEnumerable<object[]> Seeds() => Enumerable.Range(1, 5).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Journaled_mutations_replayed_on_a_copy_give_the_same_tree(int seed)
    {
        using var tmp = new TempDir();
        using var primary = new TestVolumeRoots(tmp.Sub("primary"));
        using var backup = new TestVolumeRoots(tmp.Sub("backup"));
        var sender = new VolumeReplica(primary);
        var receiver = new VolumeReplica(backup);
        var mutator = new RandomVolumeMutator(tmp.Sub("primary"), 0, new Random(seed));

        // Both start empty: a copy of nothing, then the journal.
        sender.BeginCopy();
        sender.DrainCopy(receiver.Apply);
        sender.BeginJournal();
        mutator.Journal = primary.Journal;
        Assert.NotNull(mutator.Journal);

        var random = new Random(seed * 7919);
        for (int epoch = 0; epoch < 40; epoch++)
        {
            int n = random.Next(1, 12);
            for (int i = 0; i < n; i++) mutator.Step();
            int bodies = 0;
            sender.DrainJournal(body =>
            {
                Assert.True(body.Length <= IVolumeReplica.MaxBatchBytes);
                receiver.Validate(body);
                receiver.Apply(body);
                bodies++;
            });
            Assert.True(bodies > 0);
            if (epoch % 5 == 4) Assert.Equal(VolumeTree.Describe(tmp.Sub("primary")), VolumeTree.Describe(tmp.Sub("backup")));
        }
        Assert.Equal(VolumeTree.Describe(tmp.Sub("primary")), VolumeTree.Describe(tmp.Sub("backup")));

        sender.StopTracking();
        Assert.Null(primary.Journal);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Copy_rounds_while_the_tree_changes_converge_then_the_journal_takes_over(int seed)
    {
        using var tmp = new TempDir();
        string primaryDir = tmp.Sub("primary"), backupDir = tmp.Sub("backup");
        using var primary = new TestVolumeRoots(primaryDir);
        using var backup = new TestVolumeRoots(backupDir);
        var mutator = new RandomVolumeMutator(primaryDir, 0, new Random(seed));
        for (int i = 0; i < 150; i++) mutator.Step();   // an existing volume, not journaled
        File.WriteAllText(Path.Combine(backupDir, "stale"), "what the receiver had before");

        var sender = new VolumeReplica(primary);
        var receiver = new VolumeReplica(backup);
        var random = new Random(seed * 31);
        sender.BeginCopy();
        mutator.Journal = primary.Journal;
        for (int round = 0; round < 6; round++)
        {
            // The domain runs during the round: mutations while bodies are being produced, and between rounds.
            sender.DrainCopy(body =>
            {
                receiver.Validate(body);
                receiver.Apply(body);
                if (random.Next(3) == 0) mutator.Step();
            });
            for (int i = random.Next(0, 25); i > 0; i--) mutator.Step();
        }
        sender.DrainCopy(receiver.Apply);                  // the last round, paused: nothing changes meanwhile
        Assert.Equal(VolumeTree.Describe(primaryDir), VolumeTree.Describe(backupDir));

        sender.BeginJournal();
        mutator.Journal = primary.Journal;
        for (int epoch = 0; epoch < 15; epoch++)
        {
            for (int i = random.Next(1, 8); i > 0; i--) mutator.Step();
            sender.DrainJournal(receiver.Apply);
        }
        Assert.Equal(VolumeTree.Describe(primaryDir), VolumeTree.Describe(backupDir));
        sender.StopTracking();
    }

    [Fact]
    public void A_copy_round_sends_only_the_paths_changed_since_the_last()
    {
        using var tmp = new TempDir();
        string primaryDir = tmp.Sub("primary"), backupDir = tmp.Sub("backup");
        Directory.CreateDirectory(Path.Combine(primaryDir, "big"));
        var blob = new byte[3 << 20];
        new Random(5).NextBytes(blob);
        File.WriteAllBytes(Path.Combine(primaryDir, "big", "blob"), blob);
        File.WriteAllText(Path.Combine(primaryDir, "small"), "one");
        using var primary = new TestVolumeRoots(primaryDir);
        using var backup = new TestVolumeRoots(backupDir);
        var sender = new VolumeReplica(primary);
        var receiver = new VolumeReplica(backup);

        sender.BeginCopy();
        long first = sender.DrainCopy(receiver.Apply);
        Assert.Equal(blob.Length + 3, first);

        File.WriteAllText(Path.Combine(primaryDir, "small"), "two!");
        primary.Journal!.Wrote(0, "small", 0, "two!"u8);
        long second = sender.DrainCopy(receiver.Apply);
        Assert.Equal(4, second);
        Assert.Equal(0, sender.DrainCopy(receiver.Apply));
        Assert.Equal(VolumeTree.Describe(primaryDir), VolumeTree.Describe(backupDir));
    }

    [Fact]
    public void A_copy_round_after_a_write_through_one_name_of_a_hard_link_then_its_unlink_updates_the_other_name()
    {
        using var tmp = new TempDir();
        string primaryDir = tmp.Sub("primary"), backupDir = tmp.Sub("backup");
        Directory.CreateDirectory(primaryDir);
        File.WriteAllText(Path.Combine(primaryDir, "a"), "first");
        using var primary = new TestVolumeRoots(primaryDir);
        using var backup = new TestVolumeRoots(backupDir);
        var sender = new VolumeReplica(primary);
        var receiver = new VolumeReplica(backup);
        sender.BeginCopy();
        sender.DrainCopy(receiver.Apply);

        Assert.Equal(0, Remus.Sandbox.Platform.HostDirectories.LinkAt(Remus.Sandbox.Platform.HostDirectories.AtFdCwd, Path.Combine(primaryDir, "a"),
            Remus.Sandbox.Platform.HostDirectories.AtFdCwd, Path.Combine(primaryDir, "b"), 0));
        primary.Journal!.Linked(0, "a", "b");
        sender.DrainCopy(receiver.Apply);                       // the receiver has a and b as one inode now

        File.WriteAllText(Path.Combine(primaryDir, "b"), "second, through b");
        primary.Journal.Wrote(0, "b", 0, "second, through b"u8);
        File.Delete(Path.Combine(primaryDir, "b"));
        primary.Journal.Unlinked(0, "b");
        sender.DrainCopy(receiver.Apply);                       // only b was touched, but a shows the write

        Assert.Equal("second, through b", File.ReadAllText(Path.Combine(backupDir, "a")));
        Assert.Equal(VolumeTree.Describe(primaryDir), VolumeTree.Describe(backupDir));
    }

    [Fact]
    public void Unprotected_nothing_is_kept()
    {
        using var tmp = new TempDir();
        using var primary = new TestVolumeRoots(tmp.Sub("p"));
        var sender = new VolumeReplica(primary);
        Assert.Null(primary.Journal);
        sender.BeginJournal();
        primary.Journal!.Wrote(0, "f", 0, new byte[1000]);
        Assert.True(sender.Journal.PendingBytes > 0);
        sender.StopTracking();
        Assert.Null(primary.Journal);
        sender.Journal.Wrote(0, "f", 0, new byte[1000]);   // a late call after the table dropped it
        Assert.Equal(0, sender.Journal.PendingBytes);
        Assert.Equal(VolumeTracking.Off, sender.Journal.Mode);
    }
}
