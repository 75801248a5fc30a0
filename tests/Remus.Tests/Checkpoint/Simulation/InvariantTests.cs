using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>The invariant checker on hand-made transcripts: each rule of the guarantee, broken once.</summary>
public class InvariantTests
{
    private static readonly long[] Epochs = [10, 20, 30];

    private static Chunk L(Source source, long n, string run) => new(0, 0, source, $"n={n} run={run} x\n");

    private static List<Chunk> Numbered(IEnumerable<Chunk> chunks) => [.. chunks.Select((c, i) => c with { Index = i })];

    private static IEnumerable<Chunk> Run(Source source, long from, long to, string run)
    {
        for (long n = from; n <= to; n++) yield return L(source, n, run);
    }

    [Fact]
    public void A_clean_run_and_a_failover_that_repeats_the_last_epoch_pass()
    {
        Assert.Empty(Invariants.Check(Numbered(Run(Source.Primary, 0, 25, "aa")), Epochs));
        // The primary released up to 24 (epoch 20..29 partly); the backup re-emits 20..24 (its checkpoint's epoch) and runs on.
        var failover = Run(Source.Primary, 0, 24, "aa").Concat(Run(Source.Backup, 20, 24, "aa")).Concat(Run(Source.Backup, 25, 40, "bb"));
        Assert.Empty(Invariants.Check(Numbered(failover), Epochs));
    }

    [Fact]
    public void A_gap_is_found()
    {
        var v = Invariants.Check(Numbered(Run(Source.Primary, 0, 9, "aa").Concat(Run(Source.Backup, 11, 15, "bb"))), Epochs);
        Assert.Contains(v, s => s.StartsWith("gap: n=11", StringComparison.Ordinal));
    }

    [Fact]
    public void A_released_line_printed_again_by_another_run_is_a_rollback()
    {
        var v = Invariants.Check(Numbered(Run(Source.Primary, 0, 24, "aa").Concat(Run(Source.Backup, 20, 30, "bb"))), Epochs);
        Assert.Contains(v, s => s.StartsWith("rollback: n=20", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_repeated_blocks_and_a_block_longer_than_an_epoch_are_found()
    {
        var twice = Run(Source.Primary, 0, 24, "aa").Concat(Run(Source.Backup, 20, 24, "aa")).Concat(Run(Source.Backup, 25, 26, "aa"))
            .Concat(Run(Source.Backup, 25, 26, "aa"));
        Assert.Contains(Invariants.Check(Numbered(twice), Epochs), s => s.StartsWith("a second block", StringComparison.Ordinal));
        var long_ = Run(Source.Primary, 0, 24, "aa").Concat(Run(Source.Backup, 15, 24, "aa")).Concat(Run(Source.Backup, 25, 30, "bb"));
        Assert.Contains(Invariants.Check(Numbered(long_), Epochs), s => s.StartsWith("the repeated block n=15..24", StringComparison.Ordinal));
    }

    [Fact]
    public void The_primary_releasing_after_the_backup_did_is_two_copies()
    {
        var v = Invariants.Check(Numbered(Run(Source.Primary, 0, 9, "aa").Concat(Run(Source.Backup, 10, 12, "bb")).Concat(Run(Source.Primary, 13, 14, "aa"))), Epochs);
        Assert.Contains(v, s => s.StartsWith("two copies released output", StringComparison.Ordinal));
    }

    [Fact]
    public void A_world_that_never_saw_n_0_misses_output()
    {
        Assert.Contains(Invariants.Check(Numbered(Run(Source.Primary, 3, 9, "aa")), Epochs), s => s.StartsWith("the world never saw n=0", StringComparison.Ordinal));
    }
}
