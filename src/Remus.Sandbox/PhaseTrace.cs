using System.Diagnostics;

namespace Remus.Sandbox;

/// <summary>TEMPORARY: a timeline of named marks (REMUS_MIGRATION_TIMING=1), printed to stderr by Dump.</summary>
public static class PhaseTrace
{
    public static readonly bool On = Environment.GetEnvironmentVariable("REMUS_MIGRATION_TIMING") == "1";
    private static readonly (long T, string Name, int Thread)[] Marks = new (long, string, int)[4096];
    private static int _count;

    public static void Mark(string name)
    {
        if (!On) return;
        int i = Interlocked.Increment(ref _count) - 1;
        if (i < Marks.Length) Marks[i] = (Stopwatch.GetTimestamp(), name, Environment.CurrentManagedThreadId);
    }

    public static void Reset() { if (On) _count = 0; }

    public static void Dump()
    {
        if (!On) return;
        int n = Math.Min(_count, Marks.Length);
        if (n == 0) return;
        long t0 = Marks[0].T, prev = t0;
        for (int i = 0; i < n; i++)
        {
            var (t, name, th) = Marks[i];
            Console.Error.WriteLine($"  {Stopwatch.GetElapsedTime(t0, t).TotalMilliseconds,8:F2} ms (+{Stopwatch.GetElapsedTime(prev, t).TotalMilliseconds,7:F2}) [{th}] {name}");
            prev = t;
        }
        _count = 0;
    }
}
