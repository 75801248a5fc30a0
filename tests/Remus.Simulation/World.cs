using System.Diagnostics;
using System.Text;

namespace Remus.Simulation;

public enum Source { Primary, Backup }

/// <summary>One write that reached the outside world.</summary>
public sealed record Chunk(int Index, double AtMs, Source Source, string Text);

/// <summary>The outside world: every chunk of console output released to it, with its source, in order.</summary>
public sealed class World(Stopwatch clock)
{
    private readonly List<Chunk> _chunks = [];

    public void Record(Source source, ReadOnlySpan<byte> data)
    {
        string text = Encoding.ASCII.GetString(data);
        lock (_chunks) _chunks.Add(new Chunk(_chunks.Count, clock.Elapsed.TotalMilliseconds, source, text));
    }

    public IReadOnlyList<Chunk> Chunks
    {
        get { lock (_chunks) return [.. _chunks]; }
    }

    /// <summary>The highest counter a line from <paramref name="source"/> carried, or -1.</summary>
    public long MaxCounter(Source source)
    {
        long max = -1;
        foreach (var c in Chunks)
            if (c.Source == source)
                foreach (var line in Transcript.Lines(c.Text))
                    if (Transcript.Parse(line) is { } l) max = Math.Max(max, l.N);
        return max;
    }
}
