namespace Remus.Fuzz.Targets;

/// <summary>What one input did to a target: taken, or refused with one of the target's own errors.</summary>
public enum FuzzOutcome { Accepted, Refused }

/// <summary>
/// A harness body: takes the bytes of one input and feeds one component the way the VMM does. Refusals are the
/// component's own exception types (a clear error for a bad input); any other exception escapes <see cref="Run"/>
/// and is a finding (AFL++ sees it as a crash; the xunit corpus tests fail on it).
/// </summary>
public sealed class FuzzTarget(string name, string what, Action<byte[]> body, IReadOnlyList<Type> refusals)
{
    public string Name => name;

    /// <summary>One line: what the target feeds.</summary>
    public string What => what;

    /// <summary>The exception types that count as "refused" (and their subclasses).</summary>
    public IReadOnlyList<Type> Refusals => refusals;

    public bool IsRefusal(Exception e)
    {
        foreach (var type in refusals)
            if (type.IsInstanceOfType(e)) return true;
        return false;
    }

    /// <summary>Feeds one input. Any exception that is not a refusal propagates.</summary>
    public FuzzOutcome Run(byte[] input) => Run(input, out _);

    /// <summary>Feeds one input; <paramref name="refusal"/> is the refusal, if refused.</summary>
    public FuzzOutcome Run(byte[] input, out Exception? refusal)
    {
        refusal = null;
        try
        {
            body(input);
            return FuzzOutcome.Accepted;
        }
        catch (Exception e) when (IsRefusal(e))
        {
            refusal = e;
            return FuzzOutcome.Refused;
        }
    }
}

/// <summary>A harness found the component broke its own rule (e.g. a refused epoch changed the target): always a finding.</summary>
public sealed class FuzzInvariantException(string message) : Exception(message);

/// <summary>Every target by name (the names of fuzz/corpus/*).</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        CheckpointTarget.Target,
        ElfTarget.Target,
        ConfigTargets.DomainToml,
        ConfigTargets.HostToml,
        ConfigTargets.DomainJson,
        ControlTarget.Target,
        PageCodecTarget.Target,
    ];

    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
