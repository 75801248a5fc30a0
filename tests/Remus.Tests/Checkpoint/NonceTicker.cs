using System.Globalization;
using Remus.Soak.Continuity;
using Remus.Tests.Support;
using Xunit.Sdk;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// The nonce ticker (tests/guests/nonce_ticker.c) and the check of what the outside world saw of it. Each line is
/// "tick I t NS r HEX": a counter from 0, CLOCK_REALTIME in ns and 8 random bytes. Re-executing a tick prints a
/// different line, so a failover that re-runs output the primary had already released (a rollback of released
/// output) shows up as the same counter with two different lines, where a deterministic guest would print the same
/// line twice and hide it.
/// </summary>
internal static class NonceTicker
{
    /// <summary>tests/guests/nonce_ticker.c built with gcc -static (cached).</summary>
    public static string Program => GuestBuilder.Build("nonce_ticker");

    public static string[] Args(int count, TimeSpan period, int mib = 1) =>
    [
        count.ToString(CultureInfo.InvariantCulture),
        ((long)period.TotalMicroseconds).ToString(CultureInfo.InvariantCulture),
        mib.ToString(CultureInfo.InvariantCulture),
    ];

    /// <summary>
    /// The most lines one epoch's output can hold, for a ticker printing at most one line per
    /// <paramref name="tick"/> (nanosleep never returns early) under checkpoints every <paramref name="interval"/>.
    /// An epoch runs from one pause to the next: the interval when the checkpoint's send and ack fit in it, longer
    /// when they do not (the loop then starts the next epoch at once). So: ceil(interval / tick) lines, +1 for a tick
    /// that straddles a pause, and the same again for an epoch stretched to twice the interval by a slow ack on a
    /// loaded machine. For -i 20 with a 2 ms tick that is 2 x (10 + 1) = 22 lines: still far fewer than a rollback
    /// of the whole run, and the identity check below catches re-execution of even one line.
    /// </summary>
    public static int LinesPerEpoch(TimeSpan interval, TimeSpan tick) =>
        2 * ((int)Math.Ceiling(interval.TotalMilliseconds / tick.TotalMilliseconds) + 1);

    /// <summary>The ticks of a console text, in order; "done" is dropped; anything else fails.</summary>
    public static List<ReleasedOutput.Tick> Parse(string text, bool allowPartialLastLine = false) =>
        Xunit(() => ReleasedOutput.Parse(text, allowPartialLastLine));

    /// <summary>
    /// The output guarantee (DESIGN.md §5) on the combined console: <see cref="ReleasedOutput.Check"/> (shared with
    /// the soak harness, bench/soak), its violations as test failures. Returns the re-emitted block's length.
    /// </summary>
    public static ReleasedOutput.Finding AssertReleasedOutput(string combined, int count, int maxRepeated, string? context = null) =>
        Xunit(() => ReleasedOutput.Check(combined, count, maxRepeated, context));

    private static T Xunit<T>(Func<T> check)
    {
        try { return check(); }
        catch (ContinuityViolation e) { throw new XunitException(e.Message); }
    }
}
