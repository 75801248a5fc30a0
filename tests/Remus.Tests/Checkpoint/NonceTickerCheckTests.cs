using System.Text;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.Checkpoint;

/// <summary>The combined-console check of <see cref="NonceTicker"/> on hand-made outputs: what it accepts and what it refuses.</summary>
public class NonceTickerCheckTests
{
    private static string Line(int i, int run = 0) => $"tick {i} t {1_000_000_000L * (run + 1) + i} r {(ulong)(i * 7919 + run * 104729):x16}";

    /// <summary>Counters <paramref name="from"/>..<paramref name="to"/> (inclusive) as printed by execution <paramref name="run"/>.</summary>
    private static IEnumerable<string> Lines(int from, int to, int run = 0) => Enumerable.Range(from, to - from + 1).Select(i => Line(i, run));

    private static string Text(params IEnumerable<string>[] parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts)
            foreach (var l in p) sb.Append(l).Append('\n');
        return sb.Append("done\n").ToString();
    }

    [Fact]
    public void A_clean_run_passes_with_nothing_repeated() =>
        Assert.Equal(0, NonceTicker.AssertReleasedOutput(Text(Lines(0, 99)), 100, 0).Repeated);

    [Fact]
    public void One_epoch_re_emitted_byte_for_byte_passes() =>
        Assert.Equal(5, NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(45, 49), Lines(50, 99, run: 1)), 100, 10).Repeated);

    [Fact]
    public void A_re_executed_line_is_a_rollback()
    {
        var e = Assert.Throws<XunitException>(() => NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(45, 99, run: 1)), 100, 10));
        Assert.Contains("rollback of released output: counter 45", e.Message);
        Assert.Contains(Line(45), e.Message);
        Assert.Contains(Line(45, 1), e.Message);
    }

    [Fact]
    public void A_gap_fails() =>
        Assert.Contains("gap", Assert.Throws<XunitException>(() => NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(51, 99)), 100, 10)).Message);

    [Fact]
    public void More_than_one_epoch_re_emitted_fails() =>
        Assert.Contains("more than one epoch", Assert.Throws<XunitException>(() =>
            NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(30, 49), Lines(50, 99, 1)), 100, 10)).Message);

    [Fact]
    public void Going_back_twice_fails() =>
        Assert.Contains("a second time", Assert.Throws<XunitException>(() =>
            NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(47, 49), Lines(50, 59, 1), Lines(58, 59, 1), Lines(60, 99, 2)), 100, 10)).Message);

    [Fact]
    public void A_re_emitted_block_that_skips_lines_fails() =>
        Assert.Contains("not contiguous", Assert.Throws<XunitException>(() =>
            NonceTicker.AssertReleasedOutput(Text(Lines(0, 49), Lines(45, 46), Lines(48, 49), Lines(50, 99, 1)), 100, 10)).Message);

    [Fact]
    public void A_missing_end_fails() =>
        Assert.Contains("only counters 0..79", Assert.Throws<XunitException>(() => NonceTicker.AssertReleasedOutput(Text(Lines(0, 79)), 100, 10)).Message);
}
