using System.Diagnostics;
using Remus.Checkpoint.Migration;

namespace Remus.Toolstack.Migration;

/// <summary>
/// The CLI's progress lines of a migration or a Remus initial synchronisation. The copy reports every epoch (at most
/// 64 MiB of pages each by default, so many a second on a fast link); the user gets a line at the end of every round and,
/// within a long round, at most one a <see cref="Interval"/>: how much of the round went, the bytes so far and the rate.
/// </summary>
/// <param name="clock">tests only: the time in <see cref="Stopwatch"/> ticks (default <see cref="Stopwatch.GetTimestamp"/>)</param>
public sealed class CopyProgressLines(string prefix, Func<long>? clock = null)
{
    /// <summary>Least time between two lines within a round.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly Func<long> _clock = clock ?? Stopwatch.GetTimestamp;
    private long _last = (clock ?? Stopwatch.GetTimestamp)();

    /// <summary>The line for <paramref name="p"/>, or null when it is an epoch within a round reported too soon after the previous line.</summary>
    public string? Line(MigrationProgress p)
    {
        long now = _clock();
        if (p.Partial && Stopwatch.GetElapsedTime(_last, now) < Interval) return null;
        _last = now;
        string rate = $"{p.BytesPerSecond / 1e6:F0} MB/s";
        if (p.Partial)
        {
            double share = p.PagesThisRound == 0 ? 100 : 100.0 * p.RoundPagesSent / p.PagesThisRound;
            return $"{prefix}round {p.Round}: {p.RoundPagesSent} of {p.PagesThisRound} pages ({share:F0}%), " +
                   $"{p.BytesSent / 1e6:F1} MB so far, {rate}";
        }
        return $"{prefix}round {p.Round}: {p.PagesThisRound} pages ({p.BytesSent / 1e6:F1} MB so far, " +
               $"{p.Elapsed.TotalSeconds:F1} s, {rate}), {p.DirtyPages} dirtied meanwhile" + (p.StopAndCopy && prefix.Length == 0 ? "; stop and copy" : "");
    }
}
