using System.Text;

namespace Remus.Simulation;

/// <summary>A deliberate break of output commit, to show the harness catches it (nothing in src is changed).</summary>
public enum Mutation
{
    None,
    /// <summary>The guest writes straight to the world; the output commit console the engine holds gets nothing.</summary>
    GuestBypassesOutputCommit,
    /// <summary>Each epoch's output is released as soon as it is sealed (at Staged), before the backup has it.</summary>
    ReleaseBeforeAck,
}

/// <summary>What one seed's run showed.</summary>
public sealed record SimulationResult
{
    public required Scenario Scenario { get; init; }
    public Mutation Mutation { get; init; }
    public required IReadOnlyList<string> Violations { get; init; }
    public required IReadOnlyList<Chunk> World { get; init; }
    public required IReadOnlyList<string> Trace { get; init; }
    public bool FaultFired { get; init; }
    public bool TookOver { get; init; }
    /// <summary>How the backup's watch ended: an outcome's name, "threw: ...", or "none".</summary>
    public string BackupOutcome { get; init; } = "none";
    public long Checkpoints { get; init; }
    public double DurationMs { get; init; }
    /// <summary>Both copies were running when the run stopped (a split brain even if the world did not see it).</summary>
    public bool TwoCopiesRunning { get; init; }

    /// <summary>
    /// The longest the machine held the run up by itself: the process kept from running, its thread pool (the
    /// engine's timers) from serving, or the engine slowed between two of its own steps (a loaded machine, a GC
    /// pause, fresh memory on a nested host): a fault nobody injected.
    /// </summary>
    public double MachineStallMs { get; init; }

    /// <summary>The machine stopped the process for longer than half the timeout: a run that shows the protocol under a fault the scenario did not choose.</summary>
    public bool MachineStalled => MachineStallMs > Scenario.Timeout.TotalMilliseconds / 2;

    public bool Passed => Violations.Count == 0;

    /// <summary>The scenario, the violations, the world's transcript and the event log.</summary>
    public string Report(int maxChunks = 400, int maxEvents = 300)
    {
        var b = new StringBuilder();
        b.AppendLine($"{(Passed ? "PASSED" : "FAILED")} {Scenario}{(Mutation == Mutation.None ? "" : $" [mutation: {Mutation}]")}");
        b.AppendLine($"  fault fired: {FaultFired}; backup: {BackupOutcome}{(TookOver ? " (took over)" : "")}; checkpoints applied: {Checkpoints}; " +
                     $"two copies running at the end: {TwoCopiesRunning}; {DurationMs:F0} ms; the machine stalled the process up to {MachineStallMs:F0} ms");
        foreach (var v in Violations) b.AppendLine($"  VIOLATION: {v}");
        b.AppendLine($"  world ({World.Count} chunks{(World.Count > maxChunks ? $", the last {maxChunks}" : "")}):");
        foreach (var c in World.TakeLast(maxChunks)) b.AppendLine($"    #{c.Index,-4} {c.AtMs,8:F1} ms {(c.Source == Source.Primary ? "P" : "B")} {c.Text.TrimEnd()}");
        b.AppendLine($"  events ({Trace.Count}{(Trace.Count > maxEvents ? $", the last {maxEvents}" : "")}):");
        foreach (var e in Trace.TakeLast(maxEvents)) b.AppendLine($"    {e}");
        return b.ToString();
    }
}
