namespace Remus.Toolstack.Config;

/// <summary>
/// What JSON can leave null in a <see cref="DomainConfig"/> although its type says it cannot be: a checkpoint stream
/// carries its domain config as JSON from the sender (untrusted), so the receiver checks this before anything reads
/// it (the policy, the spec). Lists a sender left out are empty (<see cref="DomainConfig"/>'s setters); a null name,
/// program, list entry or required key is refused here, and the name must be a domain name as a config file's is.
/// </summary>
internal static class DomainConfigShape
{
    /// <summary>The first problem, as the end of "the stream's domain configuration is invalid: ..."; null: none.</summary>
    public static string? Problem(DomainConfig config)
    {
        if (config.Name is null) return "it has no name";
        if (DomainName.Problem(config.Name) is { } name) return name;
        if (config.Program is null) return "it has no program";
        if (config.Args.Any(a => a is null)) return "an argument is null";
        if (config.Env.Any(e => e.Key is null || e.Value is null)) return "an environment variable has a null name or value";
        if (config.Files.Any(f => f is null)) return "an entry of files is null";
        if (config.Witness?.Any(w => w is null) == true) return "an entry of witness is null";
        if (config.Volumes.Any(v => v is null || v.Source is null || v.Target is null)) return "a volume has no source or target";
        if (config.Network is { } n && (n.Tap is null || n.Address is null || n.Mac is null)) return "[network] lacks tap, address or mac";
        if (config.LimitsProblem() is { } limits) return limits;
        return null;
    }
}
