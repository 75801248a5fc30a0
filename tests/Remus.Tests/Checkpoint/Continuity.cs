using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>The output guarantee of DESIGN.md §5, checked against a native run of the same program.</summary>
public static class Continuity
{
    /// <summary>
    /// Every native line appears, in order, each identical to the native one (no gap, nothing altered); the only
    /// repetition allowed is one contiguous run of lines re-emitted once, at the failover. Returns that run's length.
    /// </summary>
    public static int AssertNoGapAtMostOneEpochRepeated(string native, string combined, int maxRepeated = 200)
    {
        var expected = native.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var index = new Dictionary<string, int>();
        for (int i = 0; i < expected.Length; i++) index.TryAdd(expected[i], i);
        int next = 0, repeated = 0, restarts = 0, replayAt = -1;
        foreach (var line in combined.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.True(index.TryGetValue(line, out int at), $"a line the native run never printed: '{line}'");
            if (at == next && replayAt < 0) { next++; continue; }
            if (replayAt >= 0 && at == replayAt + 1)
            {
                replayAt = at;
                if (at == next) { next++; replayAt = -1; } else repeated++;
                continue;
            }
            Assert.True(at < next, $"gap: expected line {next} '{expected[Math.Min(next, expected.Length - 1)]}', got line {at} '{line}'");
            restarts++;
            Assert.True(restarts <= 1, $"the output went back a second time, at line {at}");
            replayAt = at;
            repeated++;
        }
        Assert.True(next == expected.Length, $"only {next} of {expected.Length} lines arrived");
        Assert.True(repeated <= maxRepeated, $"{repeated} lines repeated");
        return repeated;
    }
}
