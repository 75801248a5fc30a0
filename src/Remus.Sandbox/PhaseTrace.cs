using System.Diagnostics;

namespace Remus.Sandbox;

/// <summary>
/// A timeline of a live migration's stop-and-copy (issue 14), off unless REMUS_MIGRATION_TIMING=1: the sender, the
/// receiver (when it runs in the same process, as in <c>remus-bench scale</c>) and the domain's LoadState mark the
/// phases; the sender prints them to stderr (milliseconds since the pause, and since the previous mark) once the target
/// confirmed. Off, a mark is one test of a static flag; on, it allocates nothing (at most <see cref="Capacity"/> marks
/// are kept between two migrations; callers that format a name test <see cref="On"/> first).
/// </summary>
public static class PhaseTrace
{
    public const int Capacity = 4096;

    public static readonly bool On = Environment.GetEnvironmentVariable("REMUS_MIGRATION_TIMING") == "1";
    private static readonly (long T, string Name, int Thread)[] Marks = new (long, string, int)[Capacity];
    private static int _count;

    public static void Mark(string name)
    {
        if (!On) return;
        int i = Interlocked.Increment(ref _count) - 1;
        if (i < Marks.Length) Marks[i] = (Stopwatch.GetTimestamp(), name, Environment.CurrentManagedThreadId);
    }

    /// <summary>Forgets the marks so far (the sender, at its pause).</summary>
    public static void Reset()
    {
        if (!On) return;
        Volatile.Write(ref _count, 0);
        for (int g = 0; g < 3; g++) Collections[g] = GC.CollectionCount(g);
        _pauseTotal = GC.GetTotalPauseDuration();
    }

    private static readonly int[] Collections = new int[3];
    private static TimeSpan _pauseTotal;

    /// <summary>Prints the marks since <see cref="Reset"/> to stderr and forgets them.</summary>
    public static void Dump()
    {
        if (!On) return;
        int n = Math.Min(Volatile.Read(ref _count), Marks.Length);
        if (n == 0) return;
        var marks = Marks.AsSpan(0, n).ToArray();
        Array.Sort(marks, (a, b) => a.T.CompareTo(b.T));
        long t0 = marks[0].T, prev = t0;
        foreach (var (t, name, thread) in marks)
        {
            Console.Error.WriteLine($"  {Stopwatch.GetElapsedTime(t0, t).TotalMilliseconds,8:F2} ms (+{Stopwatch.GetElapsedTime(prev, t).TotalMilliseconds,6:F2}) [thread {thread}] {name}");
            prev = t;
        }
        Console.Error.WriteLine($"  garbage collections meanwhile: gen0 {GC.CollectionCount(0) - Collections[0]}, gen1 {GC.CollectionCount(1) - Collections[1]}, " +
                                $"gen2 {GC.CollectionCount(2) - Collections[2]}; GC pauses {(GC.GetTotalPauseDuration() - _pauseTotal).TotalMilliseconds:F2} ms");
        Volatile.Write(ref _count, 0);
    }
}
