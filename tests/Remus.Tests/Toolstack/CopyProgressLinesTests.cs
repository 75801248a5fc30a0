using System.Diagnostics;
using Remus.Checkpoint.Migration;
using Remus.Toolstack.Migration;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// The CLI's copy progress (issue 14): the copy reports every epoch (64 MiB), the user gets a line per round and at
/// most one a second within a round, with the share of the round, the bytes so far and the rate. A fake clock.
/// </summary>
public class CopyProgressLinesTests
{
    private static MigrationProgress Epoch(long done, double seconds) =>
        new(0, done, done * 2048, 100_000, 0, false) { Partial = true, RoundPagesSent = done, Elapsed = TimeSpan.FromSeconds(seconds) };

    [Fact]
    public void Epochs_within_a_round_make_at_most_a_line_a_second_and_every_round_end_makes_one()
    {
        long now = 0;
        var lines = new CopyProgressLines("initial sync ", () => now);
        var printed = new List<string>();
        void Report(MigrationProgress p) { if (lines.Line(p) is { } l) printed.Add(l); }

        // 20 epochs of 5000 pages, one every 0.25 s: 5 s of copy make 5 lines (one a second), not 20.
        for (int i = 1; i <= 20; i++)
        {
            now += Stopwatch.Frequency / 4;
            Report(Epoch(i * 5000L, i * 0.25));
        }
        Assert.Equal(5, printed.Count);
        Assert.StartsWith("initial sync round 0: ", printed[0]);
        Assert.Matches(@"^initial sync round 0: \d+ of 100000 pages \(\d+%\), [\d.]+ MB so far, \d+ MB/s$", printed[0]);

        // The end of a round always makes a line, however soon after the last one.
        Report(new MigrationProgress(0, 100_000, 204_800_000, 100_000, 42, false) { RoundPagesSent = 100_000, Elapsed = TimeSpan.FromSeconds(5) });
        Assert.Equal(6, printed.Count);
        Assert.Equal("initial sync round 0: 100000 pages (204.8 MB so far, 5.0 s, 41 MB/s), 42 dirtied meanwhile", printed[^1]);
    }
}
