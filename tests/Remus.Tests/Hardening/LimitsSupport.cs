using System.Text;
using Remus.Sandbox;

namespace Remus.Tests.Hardening;

/// <summary>
/// The outside world of a limits test: records stdout in order; stdin stays open (a read waits, pausably) until
/// <see cref="Go"/>, then ends, which starts `exhaust console`'s flood when the test is ready for it.
/// </summary>
public sealed class GatedInputConsole : IConsole
{
    private readonly MemoryStream _out = new();
    private readonly ManualResetEventSlim _go = new(false);

    public void Go() => _go.Set();

    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        if (stream != 1) return;
        lock (_out) _out.Write(data);
    }

    public int Read(Span<byte> buffer, CancellationToken cancel)
    {
        _go.Wait(cancel);
        return 0;
    }

    public bool IsTerminal => false;

    public long Bytes { get { lock (_out) return _out.Length; } }

    public string Text { get { lock (_out) return Encoding.ASCII.GetString(_out.ToArray()); } }
}

internal static class LimitsSupport
{
    /// <summary>What `exhaust console KIB` writes: numbered lines until at least KIB KiB, then "console done".</summary>
    public static string ConsoleFlood(int kib)
    {
        var sb = new StringBuilder();
        for (long line = 0; sb.Length < kib * 1024; line++) sb.Append(line.ToString("D8", System.Globalization.CultureInfo.InvariantCulture)).Append(" console line\n");
        return sb.Append("console done\n").ToString();
    }

    /// <summary>Waits (polling) until <paramref name="condition"/> holds; a hang is reported, never a duration judged.</summary>
    public static void WaitUntil(Func<bool> condition, string what, int seconds = 120)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    /// <summary>
    /// Continuity at byte granularity (a write split by the bound puts an epoch's edge inside a line): the world saw
    /// a prefix of <paramref name="expected"/>, then, from some earlier point, the rest of it — no gap, and at most
    /// <paramref name="maxRepeated"/> bytes (one epoch's output) seen twice. Returns how many bytes were.
    /// </summary>
    public static int AssertNoGapAtMostOneEpochRepeated(string expected, string world, int maxRepeated)
    {
        int x = 0;
        while (x < expected.Length && x < world.Length && expected[x] == world[x]) x++;
        int y = expected.Length - (world.Length - x);
        Xunit.Assert.True(y >= 0 && y <= x, $"gap or extra output: {FirstDifference(expected, world)}");
        Xunit.Assert.True(string.CompareOrdinal(world, x, expected, y, world.Length - x) == 0,
            $"after the first {x} bytes the world did not go on from an earlier point of the output: {FirstDifference(expected[y..], world[x..])}");
        Xunit.Assert.True(x - y <= maxRepeated, $"{x - y} bytes seen twice, more than one epoch's {maxRepeated}");
        return x - y;
    }

    /// <summary>Where two texts first differ, for a message.</summary>
    public static string FirstDifference(string expected, string actual)
    {
        int i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        string Around(string s) => s.Substring(Math.Max(0, i - 40), Math.Min(80, s.Length - Math.Max(0, i - 40))).Replace("\n", "\\n");
        return $"{expected.Length} bytes expected, {actual.Length} got; first difference at {i}: expected '{Around(expected)}', got '{Around(actual)}'";
    }
}
