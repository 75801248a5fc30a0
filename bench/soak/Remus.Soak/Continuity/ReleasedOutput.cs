using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Remus.Soak.Continuity;

/// <summary>
/// The check of what the outside world saw of the nonce ticker (tests/guests/nonce_ticker.c). Each line is
/// "tick I t NS r HEX": a counter from 0, CLOCK_REALTIME in ns and 8 random bytes. Re-executing a tick prints a
/// different line, so a failover that re-runs output the primary had already released (a rollback of released
/// output) shows up as the same counter with two different lines, where a deterministic guest would print the same
/// line twice and hide it. Used by the tests (Checkpoint/NonceTicker, the end-to-end failover tests) and the soak
/// harness (bench/soak); violations are <see cref="ContinuityViolation"/>s.
/// </summary>
internal static partial class ReleasedOutput
{
    /// <summary>One parsed line.</summary>
    public readonly record struct Tick(long Counter, long RealtimeNs, string Line);

    /// <summary>What <see cref="Check"/> found: the re-emitted block's length and the number of tick lines.</summary>
    public readonly record struct Finding(int Repeated, int Lines);

    [GeneratedRegex(@"^tick (\d+) t (\d+) r [0-9a-f]{16}$")]
    private static partial Regex LinePattern();

    /// <summary>The ticks of a console text, in order; "done" is dropped; anything else fails.</summary>
    public static List<Tick> Parse(string text, bool allowPartialLastLine = false)
    {
        var ticks = new List<Tick>();
        var lines = text.Split('\n');
        bool done = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (i == lines.Length - 1)
            {
                if (line.Length == 0 || allowPartialLastLine) break;
                throw new ContinuityViolation($"the console ends in a partial line: '{line}'");
            }
            if (line == "done") { done = true; continue; }
            if (done) throw new ContinuityViolation($"line {i} comes after 'done': '{line}'");
            var m = LinePattern().Match(line);
            if (!m.Success) throw new ContinuityViolation($"line {i} is not a nonce ticker line: '{line}'");
            ticks.Add(new Tick(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), line));
        }
        return ticks;
    }

    /// <summary>
    /// The output guarantee (DESIGN.md §5) on the combined console (what the primary released, then what the backup
    /// printed after taking over): the counters run 0..count-1 with no gap and end with "done"; where a counter
    /// appears twice both lines are byte-identical (a re-emitted copy of released output, not a re-execution: that
    /// would be a rollback of what the world saw); the repeated lines form one contiguous block, appear once, and are
    /// at most <paramref name="maxRepeated"/> (one epoch's worth) long.
    /// <para>With <paramref name="complete"/> false the same rules hold for a prefix: the output may stop anywhere
    /// (a primary lost before its backup had anything to take over), but not inside a re-emitted block, and without
    /// "done".</para>
    /// </summary>
    public static Finding Check(string combined, int count, int maxRepeated, string? context = null, bool complete = true)
    {
        try
        {
            var ticks = Parse(combined, allowPartialLastLine: !complete);
            var first = new List<string>(count); // first[i]: the first line with counter i
            int repeatFrom = -1, repeated = 0, blocks = 0;
            long last = -1; // counter of the previous line
            foreach (var t in ticks)
            {
                int next = first.Count;
                if (t.Counter == next && (repeatFrom < 0 || last == next - 1))
                {
                    first.Add(t.Line);
                    repeatFrom = -1;
                }
                else if (t.Counter > next)
                {
                    throw new ContinuityViolation($"gap: after counter {last} ('{(last >= 0 ? first[(int)last] : "")}') expected {next}, got '{t.Line}'");
                }
                else if (t.Counter == next)
                {
                    throw new ContinuityViolation($"the re-emitted block that started at counter {repeatFrom} stopped at {last} and the output went on " +
                                                  $"at {next}: lines {last + 1}..{next - 1} were released by the primary and neither re-emitted nor continued from");
                }
                else
                {
                    // A counter seen before: it must be the very same line, re-emitted.
                    string original = first[(int)t.Counter];
                    if (!string.Equals(original, t.Line, StringComparison.Ordinal))
                        throw new ContinuityViolation($"rollback of released output: counter {t.Counter} was released as\n  '{original}'\nand later printed again, " +
                                                      $"re-executed, as\n  '{t.Line}'");
                    if (repeatFrom >= 0 && t.Counter != last + 1)
                        throw new ContinuityViolation($"the re-emitted block from counter {repeatFrom} is not contiguous: {last} then {t.Counter}");
                    if (repeatFrom < 0)
                    {
                        blocks++;
                        if (blocks > 1) throw new ContinuityViolation($"the output went back a second time, to counter {t.Counter}");
                        repeatFrom = (int)t.Counter;
                    }
                    repeated++;
                }
                last = t.Counter;
            }
            if (repeatFrom >= 0 && last != first.Count - 1)
                throw new ContinuityViolation($"the output ends inside the re-emitted block (from counter {repeatFrom}, last {last})");
            if (complete)
            {
                if (first.Count != count) throw new ContinuityViolation($"only counters 0..{first.Count - 1} of 0..{count - 1} arrived");
                if (!combined.EndsWith("done\n", StringComparison.Ordinal)) throw new ContinuityViolation("the output does not end with 'done'");
            }
            else if (combined.Contains("done\n", StringComparison.Ordinal))
            {
                throw new ContinuityViolation("the output has 'done', yet it should have stopped with the primary");
            }
            if (repeated > maxRepeated)
                throw new ContinuityViolation($"{repeated} lines re-emitted, more than one epoch's worth ({maxRepeated})");
            return new Finding(repeated, ticks.Count);
        }
        catch (ContinuityViolation e)
        {
            throw new ContinuityViolation($"{(context is null ? "" : context + ": ")}{e.Message}\n--- around the failover ---\n{Around(combined)}");
        }
    }

    /// <summary>The lines near the first repeated counter (or the end), for failure messages.</summary>
    public static string Around(string combined)
    {
        var lines = combined.Split('\n');
        var seen = new HashSet<string>();
        int at = lines.Length - 1;
        for (int i = 0; i < lines.Length; i++)
        {
            var parts = lines[i].Split(' ');
            if (parts.Length > 1 && parts[0] == "tick" && !seen.Add(parts[1])) { at = i; break; }
        }
        var sb = new StringBuilder();
        for (int i = Math.Max(0, at - 30); i < Math.Min(lines.Length, at + 30); i++) sb.Append(i).Append(": ").AppendLine(lines[i]);
        return sb.ToString();
    }
}
