using Remus.Toolstack.Config;

namespace Remus.Toolstack.Security;

/// <summary>
/// What a receiver (`migrate-receive`, with or without -r) lets an incoming stream ask for, checked on the stream's
/// domain configuration before anything is created (no VMM, no run-directory entry, no staging copy, no file opened):
/// every host path the configuration names (console_log, files, volumes' sources unless --volumes DIR places them,
/// the network's netns/bridge names...) must lie under one of <see cref="AllowedPaths"/> (after normalisation:
/// no "..", symlinks resolved where the path exists), memory and vCPUs within the host limits. A refusal is a
/// <see cref="PolicyViolationException"/>: one line naming the key and the value.
/// </summary>
public sealed record ReceivePolicy
{
    /// <summary>Host path prefixes an incoming configuration may name (--allow-path, host config `allow_paths`).</summary>
    public IReadOnlyList<string> AllowedPaths { get; init; } = [];
    /// <summary>The largest memory (MiB) an incoming domain may have.</summary>
    public int MaxMemoryMiB { get; init; } = 64 * 1024;
    /// <summary>The most vCPUs (threads) an incoming domain may have.</summary>
    public int MaxVcpus { get; init; } = 256;

    /// <summary>Throws <see cref="PolicyViolationException"/> if <paramref name="config"/> asks for more than this policy allows.</summary>
    public void Check(DomainConfig config) => throw new NotImplementedException("issue 13: sec-policy");
}

/// <summary>An incoming stream asked for something the receiver's policy does not allow.</summary>
public sealed class PolicyViolationException(string message) : RemusException(message);
