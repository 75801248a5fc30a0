using Remus.Sandbox.Volumes;

namespace Remus.Toolstack.Config;

/// <summary>
/// One <c>[[volume]]</c> of a domain, resolved (and so carried in checkpoint streams): a writable host directory the
/// program sees at a guest path (docs/storage.md).
/// <code>
/// [[volume]]
/// source = "data/shop"   # host directory, relative to the config file's folder; created if missing
/// target = "/data"       # absolute guest path: not "/", not under /proc, /dev or /sys, no "." or ".." in it
/// </code>
/// Two volumes cannot share a target, nor nest (one target inside another's), nor share or nest their host
/// directories; with the default tmpfs at /tmp, no volume can be inside /tmp either (mount one at /tmp itself
/// instead, or set <c>tmpfs = false</c>).
/// </summary>
public sealed record VolumeConfig
{
    public static readonly string[] Keys = ["source", "target"];

    /// <summary>The tmpfs every domain gets unless it says <c>tmpfs = false</c> or mounts a volume there.</summary>
    public const string TmpfsTarget = "/tmp";

    private static readonly string[] Reserved = ["/proc", "/dev", "/sys"];

    /// <summary>Absolute host directory.</summary>
    public required string Source { get; init; }

    /// <summary>Absolute, normalised guest path of the mount point.</summary>
    public required string Target { get; init; }

    /// <summary>
    /// The normalised form of a guest path written as a volume's target ("//data/" is "/data"), or null and the
    /// problem (the end of a sentence naming 'target').
    /// </summary>
    public static string? NormaliseTarget(string target, out string? problem)
    {
        problem = null;
        if (target.Length == 0) problem = "'target' cannot be empty";
        else if (target[0] != '/') problem = $"'target' must be an absolute guest path like \"/data\", not \"{target}\"";
        if (problem != null) return null;
        var parts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            problem = "'target' cannot be \"/\" (the program's root is not a volume; mount one at a folder like \"/data\")";
            return null;
        }
        if (parts.Any(p => p is "." or ".."))
        {
            problem = $"'target' cannot contain \".\" or \"..\" (\"{target}\"): write the path it means";
            return null;
        }
        if (parts.Any(p => p.Length > 255))
        {
            problem = $"'target' has a component longer than 255 bytes (\"{target}\")";
            return null;
        }
        var normal = "/" + string.Join('/', parts);
        if (Reserved.FirstOrDefault(r => normal == r || normal.StartsWith(r + "/", StringComparison.Ordinal)) is { } reserved)
        {
            problem = $"'target' cannot be {reserved} or under it (\"{target}\"): the sandbox provides {reserved} itself";
            return null;
        }
        return normal;
    }

    /// <summary>A host path as volumes keep it: absolute (relative to the working directory), no trailing '/'.</summary>
    public static string HostPath(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));

    /// <summary>Whether guest or host path <paramref name="inner"/> is <paramref name="outer"/> or below it.</summary>
    internal static bool Within(string inner, string outer) =>
        inner == outer || inner.StartsWith(outer.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>
    /// What is wrong with this list of volumes as a whole (each already normalised), with the index of the volume the
    /// problem is about: a target used twice, nested targets or sources, a volume inside the tmpfs.
    /// </summary>
    public static IEnumerable<(int Index, string Problem)> Problems(IReadOnlyList<VolumeConfig> volumes, bool tmpfs)
    {
        for (int i = 0; i < volumes.Count; i++)
        {
            var v = volumes[i];
            for (int j = 0; j < i; j++)
            {
                var o = volumes[j];
                if (v.Target == o.Target)
                    yield return (i, $"'target' {v.Target} is the target of another volume too");
                else if (Within(v.Target, o.Target) || Within(o.Target, v.Target))
                    yield return (i, $"'target' {v.Target} and {o.Target}: volumes cannot be inside one another");
                else if (v.Source == o.Source)
                    yield return (i, $"'source' {v.Source} is the source of the volume at {o.Target} too");
                else if (Within(v.Source, o.Source) || Within(o.Source, v.Source))
                    yield return (i, $"'source' {v.Source} and {o.Source} (the volume at {o.Target}): a volume's host directory cannot be inside another's");
            }
            if (tmpfs && v.Target != TmpfsTarget && Within(v.Target, TmpfsTarget))
                yield return (i, $"'target' {v.Target} is inside the tmpfs at {TmpfsTarget}; mount the volume at {TmpfsTarget} itself, elsewhere, or set tmpfs = false");
        }
    }

    /// <summary>
    /// The sandbox's volumes: <paramref name="volumes"/> in order, then the tmpfs at /tmp unless
    /// <paramref name="tmpfs"/> is false or a volume is mounted there.
    /// </summary>
    public static List<VolumeSpec> ToSpecs(IReadOnlyList<VolumeConfig> volumes, bool tmpfs)
    {
        var specs = volumes.Select(v => new VolumeSpec { HostPath = v.Source, GuestPath = v.Target }).ToList();
        if (tmpfs && volumes.All(v => v.Target != TmpfsTarget))
            specs.Add(new VolumeSpec { GuestPath = TmpfsTarget, Tmpfs = true });
        return specs;
    }

    /// <summary>
    /// A receiver's (`--volumes DIR`) copy of this volume: at DIR/&lt;target without its leading slash&gt;
    /// (target /data -> DIR/data).
    /// </summary>
    public VolumeConfig Under(string directory) =>
        this with { Source = HostPath(Path.Combine(directory, Target.TrimStart('/'))) };

    /// <summary>
    /// Makes each volume's host directory if it is missing (with its parents), as `create` and `run` do before the
    /// domain starts. A path that exists but is not a directory, or cannot be made, is a <see cref="RemusException"/>.
    /// </summary>
    public static void PrepareSources(IEnumerable<VolumeConfig> volumes)
    {
        foreach (var v in volumes)
        {
            if (File.Exists(v.Source))
                throw new RemusException($"volume {v.Target}: source '{v.Source}' is a file, not a directory");
            try
            {
                Directory.CreateDirectory(v.Source);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new RemusException($"volume {v.Target}: cannot create source directory '{v.Source}': {ConfigLoader.Describe(e)}");
            }
        }
    }

    /// <summary>
    /// The value of `remus run --volume SOURCE:TARGET` (source relative to the working directory), or null and the
    /// problem. The last ':' separates them, so a host path may contain ':' but a target may not.
    /// </summary>
    public static VolumeConfig? ParseOption(string text, out string? problem)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            problem = $"--volume wants SOURCE:TARGET (a host directory and an absolute guest path, like data:/data), not '{text}'";
            return null;
        }
        var target = NormaliseTarget(text[(colon + 1)..], out problem);
        if (target is null)
        {
            problem = $"--volume {text}: {problem}";
            return null;
        }
        var source = text[..colon];
        if (source.Contains('\0') || target.Contains('\0'))
        {
            problem = "--volume cannot contain a NUL character";
            return null;
        }
        return new VolumeConfig { Source = HostPath(source), Target = target };
    }
}
