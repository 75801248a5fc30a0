using System.Text.RegularExpressions;

namespace Remus.Simulation;

/// <summary>A guest line as the world saw it.</summary>
public readonly record struct GuestLine(long N, string Nonce, string Text);

public static partial class Transcript
{
    public static IEnumerable<string> Lines(string text) => text.Split('\n').Where(l => l.Length > 0);

    public static GuestLine? Parse(string line)
    {
        var m = LineFormat().Match(line);
        return m.Success && long.TryParse(m.Groups[1].Value, out long n) ? new GuestLine(n, m.Groups[2].Value, line) : null;
    }

    [GeneratedRegex(@"^n=(\d+) run=([0-9a-f]+) ")]
    private static partial Regex LineFormat();
}

/// <summary>
/// The guarantee, checked on what the world saw (issue 15): the lines, by counter n, run from 0 with no gap; a
/// counter seen again is a byte-identical copy (the last epoch's output re-emitted by the backup), never a different
/// run's line (that would be released output rolled back); the copies form one contiguous block within one epoch's
/// output; and once the backup released anything, the primary releases nothing more (never two copies releasing).
/// </summary>
public static partial class Invariants
{
    /// <param name="chunks">the world's transcript, in order</param>
    /// <param name="boundaries">the counters at which the primary sealed output epochs (and where its guest exited), ascending</param>
    public static List<string> Check(IReadOnlyList<Chunk> chunks, IReadOnlyList<long> boundaries)
    {
        var violations = new List<string>();
        var seen = new Dictionary<long, (GuestLine Line, Chunk Chunk)>();
        long max = -1;
        int blocks = 0;
        bool inBlock = false;
        long blockStart = 0, blockEnd = 0;
        Chunk? firstBackup = null;
        var blockRanges = new List<(long From, long To)>();

        foreach (var chunk in chunks)
        {
            if (chunk.Source == Source.Backup) firstBackup ??= chunk;
            else if (firstBackup != null && violations.Count < 20)
                violations.Add($"two copies released output: the primary released #{chunk.Index} \"{chunk.Text.TrimEnd()}\" after the backup had released #{firstBackup.Index}");
            foreach (var text in Transcript.Lines(chunk.Text))
            {
                if (Transcript.Parse(text) is not { } line)
                {
                    violations.Add($"garbled output #{chunk.Index}: \"{text}\"");
                    continue;
                }
                if (line.N > max)
                {
                    if (line.N != max + 1)
                        violations.Add($"gap: n={line.N} (#{chunk.Index}, {chunk.Source}) follows n={max}; lines {max + 1}..{line.N - 1} never reached the world");
                    if (inBlock) { blockRanges.Add((blockStart, blockEnd)); inBlock = false; }
                    max = line.N;
                    seen[line.N] = (line, chunk);
                    continue;
                }
                var (first, firstChunk) = seen.TryGetValue(line.N, out var s) ? s : (default, null!);
                if (firstChunk == null)
                {
                    violations.Add($"n={line.N} (#{chunk.Index}) arrives after n={max} but was never seen before (out of order)");
                    continue;
                }
                if (first.Text != line.Text)
                    violations.Add($"rollback: n={line.N} was released as \"{first.Text}\" (#{firstChunk.Index}, {firstChunk.Source}) " +
                                   $"and later as \"{line.Text}\" (#{chunk.Index}, {chunk.Source})");
                if (!inBlock)
                {
                    blocks++;
                    if (blocks == 2) violations.Add($"a second block of repeated output starts at n={line.N} (#{chunk.Index}); at most the last epoch may appear twice");
                    inBlock = true;
                    blockStart = blockEnd = line.N;
                }
                else if (line.N != blockEnd + 1)
                {
                    violations.Add($"repeated output out of order: n={line.N} (#{chunk.Index}) after the copy of n={blockEnd}");
                    blockEnd = line.N;
                }
                else blockEnd = line.N;
            }
        }
        if (inBlock) blockRanges.Add((blockStart, blockEnd));

        if (chunks.Count > 0 && seen.Count > 0 && !seen.ContainsKey(0))
            violations.Add($"the world never saw n=0 (its first line is n={seen.Keys.Min()})");
        foreach (var (from, to) in blockRanges)
            if (!WithinOneEpoch(from, to, boundaries))
                violations.Add($"the repeated block n={from}..{to} ({to - from + 1} lines) is not within one epoch's output " +
                               $"(epochs sealed at n={string.Join(",", boundaries.TakeLast(12))})");
        return Condense(violations);
    }

    /// <summary>The first few violations of each kind (a rollback is usually a whole run of lines), and how many more.</summary>
    private static List<string> Condense(List<string> violations)
    {
        const int Each = 4;
        var kept = new List<string>();
        foreach (var g in violations.GroupBy(v => KindOf().Match(v).Value))
        {
            kept.AddRange(g.Take(Each));
            if (g.Count() > Each) kept.Add($"... and {g.Count() - Each} more like \"{g.Key.Trim()}\"");
        }
        return kept;
    }

    [GeneratedRegex(@"^[^:=0-9]*")]
    private static partial Regex KindOf();

    private static bool WithinOneEpoch(long from, long to, IReadOnlyList<long> boundaries)
    {
        long low = 0;
        foreach (long b in boundaries)
        {
            if (b <= low) continue;
            if (from >= low && to < b) return true;
            low = b;
        }
        return false;
    }
}
