using System.Diagnostics;

namespace Remus.Simulation;

/// <summary>The run's event log, with times from the start of the run (printed for a failing seed).</summary>
public sealed class EventLog(Stopwatch clock)
{
    private readonly List<string> _events = [];

    public double Now => clock.Elapsed.TotalMilliseconds;

    public void Add(string who, string what)
    {
        string e = $"{Now,8:F1} ms  {who,-7} {what}";
        lock (_events) _events.Add(e);
    }

    public IReadOnlyList<string> Events
    {
        get { lock (_events) return [.. _events]; }
    }
}
