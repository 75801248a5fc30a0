using Remus.Sandbox;
using Remus.Sandbox.Platform.Net;
using Remus.Toolstack.Config;

namespace Remus.Toolstack.Security;

/// <summary>
/// What a receiver (`migrate-receive`, with or without -r) lets an incoming stream ask for, checked on the stream's
/// domain configuration before anything is created (no VMM, no run-directory entry, no staging copy, no file opened).
/// <para>
/// <b>Host paths.</b> Every host path the configuration names is checked, each under its config key:
/// <c>program</c> (the receiving VMM does not load it, but the program may read it as /proc/self/exe and by its
/// path), each of <c>files</c> (the program may read them), <c>console_log</c> (appended to, created if missing),
/// each <c>[[volume]] source</c> (written; with `--volumes DIR` they must lie under DIR instead, see
/// <see cref="Check(DomainConfig, string?)"/>), and <c>[network] netns</c> as the path /run/netns/NAME (the VMM
/// enters that namespace). Each must be absolute, without ".." (refused outright, whatever it would resolve to), and
/// — when <see cref="RestrictPaths"/> — lie under one of <see cref="AllowedPaths"/> on a component boundary
/// (/srv/remus2 is not under /srv/remus) once the symlinks in the part of the path that exists are resolved (a
/// link under an allowed prefix that points to /etc is outside; a dangling link is followed to where it would
/// create a file). The allowed prefixes are resolved the same way.
/// </para>
/// <para>
/// <b>Default deny.</b> <see cref="RestrictPaths"/> is true by default: a policy with no <see cref="AllowedPaths"/>
/// refuses every host path. That is what a TCP receiver (`--tcp-listen`) gets when nothing is configured. A stdin
/// receiver (ssh, -s) was started by someone with a shell on this host; with no --allow-path and no allow_paths
/// configured it uses <see cref="Unrestricted"/> (or <c>policy with { RestrictPaths = false }</c>): the syntactic
/// checks (absolute, no "..") still apply, the prefix check does not.
/// </para>
/// <para>
/// <b>Limits.</b> Memory must be at most <see cref="MaxMemoryMiB"/> (every receiver). The vCPU count is not in the
/// configuration: the stream reader bounds the VCPU_STATE records of an epoch
/// (<see cref="Remus.Checkpoint.Stream.CheckpointReaderOptions.MaxVcpuStates"/>, which receivers set to
/// <see cref="MaxVcpus"/>).
/// </para>
/// A refusal is a <see cref="PolicyViolationException"/> whose message is the one line the receiver prints, naming
/// the key and the value; <see cref="PolicyViolationException.Key"/> and <see cref="PolicyViolationException.Value"/>
/// say them apart.
/// </summary>
public sealed record ReceivePolicy
{
    /// <summary>Where a network namespace named NAME lives (`ip netns add NAME`).</summary>
    public const string NetnsDirectory = NetNamespace.Directory;

    /// <summary>Most symbolic links followed while resolving one path (as Linux's MAXSYMLINKS).</summary>
    private const int MaxSymlinks = 40;

    /// <summary>Host path prefixes an incoming configuration may name (--allow-path, host config `allow_paths`).</summary>
    public IReadOnlyList<string> AllowedPaths { get; init; } = [];

    /// <summary>
    /// Whether host paths must lie under <see cref="AllowedPaths"/> (the default: with none, every host path is
    /// refused). False: no prefix restriction — for a stdin receiver (ssh, -s) with nothing configured, which may
    /// let a stream ask for what its invoker could do anyway. Added to the issue-13 contract.
    /// </summary>
    public bool RestrictPaths { get; init; } = true;

    /// <summary>The largest memory (MiB) an incoming domain may have.</summary>
    public int MaxMemoryMiB { get; init; } = 64 * 1024;
    /// <summary>The most vCPUs (threads) an incoming domain may have.</summary>
    public int MaxVcpus { get; init; } = 256;

    /// <summary>
    /// Where the receiver's settings come from, for refusal messages: the host config file it read (default
    /// <see cref="HostConfig.DefaultPath"/>). Added to the issue-13 contract.
    /// </summary>
    public string HostConfigPath { get; init; } = HostConfig.DefaultPath;

    /// <summary>No path restriction (memory and vCPU limits still apply): a stdin receiver with nothing configured.</summary>
    public static ReceivePolicy Unrestricted { get; } = new() { RestrictPaths = false };

    /// <summary>
    /// A receiver's policy from its host config and its command line, which overrides it: <paramref name="allowPaths"/>
    /// (--allow-path, null or empty: none given) replace the host's allow_paths; <paramref name="maxMemoryMiB"/>
    /// (--max-memory) and <paramref name="maxVcpus"/> (--max-vcpus) replace max_memory and max_vcpus. Paths are
    /// restricted for a TCP receiver (<paramref name="tcp"/>: default deny) and for any receiver given allowed paths
    /// (here or in the host config); a stdin receiver given none has no path restriction. Added to the issue-13 contract.
    /// </summary>
    public static ReceivePolicy For(HostConfig host, bool tcp, IReadOnlyList<string>? allowPaths = null, int? maxMemoryMiB = null, int? maxVcpus = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        bool given = allowPaths is { Count: > 0 };
        return host.Policy with
        {
            AllowedPaths = given ? allowPaths!.Select(p => Path.GetFullPath(p)).ToList() : host.Policy.AllowedPaths,
            RestrictPaths = tcp || given || host.HasAllowPaths,
            MaxMemoryMiB = maxMemoryMiB ?? host.Policy.MaxMemoryMiB,
            MaxVcpus = maxVcpus ?? host.Policy.MaxVcpus,
            HostConfigPath = host.FilePath,
        };
    }

    /// <summary>
    /// The stream reader's bounds under this policy (its <see cref="MaxVcpus"/> as the most VCPU_STATE records per
    /// epoch): what a receiver passes to <c>MigrationReceiver</c> and <c>RemusOptions.Reader</c>. Added to the issue-13 contract.
    /// </summary>
    public Remus.Checkpoint.Stream.CheckpointReaderOptions ReaderOptions() => new() { MaxVcpuStates = MaxVcpus };

    /// <summary>Throws <see cref="PolicyViolationException"/> if <paramref name="config"/> asks for more than this policy allows.</summary>
    public void Check(DomainConfig config) => Check(config, null);

    /// <summary>
    /// Throws <see cref="PolicyViolationException"/> if <paramref name="config"/> — the configuration as the receiver
    /// will build it, i.e. after <see cref="DomainConfig.WithVolumesUnder"/> — asks for more than this policy allows.
    /// With <paramref name="volumesDirectory"/> (`--volumes DIR`, chosen by the receiver), each volume's source must
    /// lie under that directory instead of under <see cref="AllowedPaths"/> (a target with ".." cannot lead out of it).
    /// </summary>
    public void Check(DomainConfig config, string? volumesDirectory)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.MemoryMiB < DomainSpec.MinMemoryMiB)
            throw new PolicyViolationException("memory", $"{config.MemoryMiB}",
                $"refused: the stream asks for memory {config.MemoryMiB} MiB, less than a domain can have ({DomainSpec.MinMemoryMiB} MiB); nothing was created");
        if (config.MemoryMiB > MaxMemoryMiB)
            throw new PolicyViolationException("memory", $"{config.MemoryMiB}",
                $"refused: the stream asks for memory {config.MemoryMiB} MiB, more than this receiver allows ({MaxMemoryMiB} MiB: --max-memory or max_memory in {HostConfigPath}); nothing was created");

        var allowed = RestrictPaths ? AllowedPaths.Select(ResolveAllowed).ToList() : null;
        CheckPath("program", config.Program, allowed);
        foreach (var file in config.Files) CheckPath("files", file, allowed);
        if (config.ConsoleLog is { } log) CheckPath("console_log", log, allowed);
        var volumesRoot = volumesDirectory is null ? null : new List<string> { ResolveAllowed(volumesDirectory) };
        foreach (var volume in config.Volumes)
        {
            if (VolumeConfig.NormaliseTarget(volume.Target, out var problem) != volume.Target)
                throw new PolicyViolationException("[[volume]] target", volume.Target,
                    $"refused: the stream asks for a volume at '{volume.Target}': {problem ?? "not a normalised guest path"}; nothing was created");
            if (volumesRoot is not null) CheckPath("[[volume]] source", volume.Source, volumesRoot, $"the volumes directory {volumesDirectory} (--volumes)");
            else CheckPath("[[volume]] source", volume.Source, allowed);
        }
        if (config.Network?.Netns is { } netns)
        {
            if (!NetNamespace.IsValidName(netns))
                throw new PolicyViolationException("[network] netns", netns,
                    $"refused: the stream asks for [network] netns '{netns}', which is not a network namespace name; nothing was created");
            CheckPath("[network] netns", NetNamespace.PathOf(netns), allowed);
        }
    }

    private void CheckPath(string key, string path, List<string>? allowed, string? where = null)
    {
        if (SyntaxProblem(path) is { } problem)
            throw new PolicyViolationException(key, path, $"refused: the stream asks for {key} '{path}': {problem}; nothing was created");
        if (allowed is null) return;
        string resolved;
        try
        {
            resolved = Resolve(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicyViolationException(key, path, $"refused: the stream asks for {key} '{path}', which cannot be resolved ({e.Message}); nothing was created");
        }
        if (allowed.Any(prefix => Within(resolved, prefix))) return;
        string via = resolved == Normalise(path) ? "" : $" (it leads to '{resolved}')";
        throw new PolicyViolationException(key, path,
            $"refused: the stream asks for {key} '{path}'{via} outside " +
            (where ?? $"the paths this receiver allows (--allow-path or allow_paths in {HostConfigPath})") + "; nothing was created");
    }

    /// <summary>What makes a path from a stream unacceptable whatever the policy: not absolute, "..", NUL; null: none.</summary>
    private static string? SyntaxProblem(string path)
    {
        if (path.Length == 0) return "an empty path";
        if (path.Contains('\0')) return "a path with a NUL character";
        if (path[0] != '/') return "not an absolute path";
        if (path.Split('/').Contains("..")) return "a path with \"..\" in it";
        return null;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="prefix"/> or below it, on a component boundary.</summary>
    internal static bool Within(string path, string prefix) =>
        prefix == "/" || path == prefix || path.StartsWith(prefix + "/", StringComparison.Ordinal);

    /// <summary>"/a//b/./c/" → "/a/b/c" (no ".." expected).</summary>
    private static string Normalise(string path) =>
        "/" + string.Join('/', path.Split('/').Where(p => p.Length > 0 && p != "."));

    /// <summary>An allowed prefix as the operator wrote it, made absolute and resolved like a path from a stream.</summary>
    private static string ResolveAllowed(string prefix) => Resolve(Path.GetFullPath(prefix));

    /// <summary>
    /// <paramref name="path"/> (absolute) with every symlink in it resolved, component by component, as far as the
    /// path exists — including a dangling link, which is followed to the file it would create; the part that does not
    /// exist is appended as written. Too many links (a loop) is an <see cref="IOException"/>.
    /// </summary>
    internal static string Resolve(string path)
    {
        var pending = new LinkedList<string>(path.Split('/').Where(p => p.Length > 0));
        string current = "/";
        int links = 0;
        while (pending.First is { } first)
        {
            string part = first.Value;
            pending.RemoveFirst();
            if (part == ".") continue;
            if (part == "..")
            {
                // Only from a link's target: current has no links in it, so its parent is the real parent.
                current = Path.GetDirectoryName(current) ?? "/";
                continue;
            }
            string next = current == "/" ? "/" + part : current + "/" + part;
            if (LinkTarget(next) is { } target)
            {
                if (++links > MaxSymlinks) throw new IOException($"too many levels of symbolic links at '{next}'");
                if (target.StartsWith('/')) current = "/";
                var parts = target.Split('/').Where(p => p.Length > 0).ToArray();
                for (int i = parts.Length - 1; i >= 0; i--) pending.AddFirst(parts[i]);
                continue;
            }
            current = next;
        }
        return current;
    }

    /// <summary>The target of the symlink at <paramref name="path"/> (not followed); null when it is not a symlink or does not exist.</summary>
    private static string? LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // a component that is not a directory: nothing further exists
        }
    }
}

/// <summary>An incoming stream asked for something the receiver's policy does not allow.</summary>
public sealed class PolicyViolationException : RemusException
{
    public PolicyViolationException(string message) : base(message) { }

    /// <summary>A refusal of <paramref name="key"/> = <paramref name="value"/>; <paramref name="message"/> is the whole line.</summary>
    public PolicyViolationException(string key, string value, string message) : base(message)
    {
        Key = key;
        Value = value;
    }

    /// <summary>The config key refused ("console_log", "files", "[[volume]] source", "[network] netns", "memory"...), if known.</summary>
    public string? Key { get; }

    /// <summary>The value refused, as the stream gave it.</summary>
    public string? Value { get; }
}
