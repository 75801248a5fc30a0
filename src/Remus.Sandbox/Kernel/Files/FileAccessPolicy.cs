using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// Which host paths the program may see: the files and directory trees listed in the domain's `files`, read-only,
/// under their host paths, and the program itself as /proc/self/exe. Everything else does not exist (ENOENT).
/// Symlinks cannot lead out: a path is admitted only if both its spelling and its resolved target are inside.
/// </summary>
internal sealed class FileAccessPolicy
{
    public const string SelfExe = "/proc/self/exe";

    private readonly List<string> _given = [];
    private readonly List<string> _canonical = [];

    public string ProgramPath { get; }

    public FileAccessPolicy(string programPath, IEnumerable<string> entries)
    {
        ProgramPath = Path.GetFullPath(programPath);
        // The program may read itself (some programs open argv[0] or /proc/self/exe).
        _given.Add(ProgramPath);
        _canonical.Add(HostFiles.RealPath(ProgramPath) ?? ProgramPath);
        foreach (var e in entries)
        {
            string full = Path.GetFullPath(e);
            string? real = HostFiles.RealPath(full);
            if (real == null) throw new SandboxException($"files: {e}: no such file or directory");
            _given.Add(full.TrimEnd('/') is "" ? "/" : full.TrimEnd('/'));
            _canonical.Add(real);
        }
    }

    private static bool Within(string path, List<string> roots)
    {
        foreach (var r in roots)
            if (path == r || r == "/" || path.StartsWith(r + "/", StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>
    /// The length of the longest entry (the program, or one of `files`) that <paramref name="fullPath"/> (absolute,
    /// normalised) is at or under; -1 when none. An entry deeper than a volume's mount point shows through the volume,
    /// as a bind mount on top of it would (the program and its `files` under /tmp stay visible over the tmpfs).
    /// </summary>
    public int DeepestEntry(string fullPath)
    {
        int best = -1;
        foreach (var r in _given)
            if ((fullPath == r || r == "/" || fullPath.StartsWith(r + "/", StringComparison.Ordinal)) && r.Length > best)
                best = r.Length;
        return best;
    }

    /// <summary>The host path for a guest path, or null when the program may not see it.</summary>
    public string? Resolve(string guestPath, string baseDir)
    {
        if (guestPath.Length == 0) return null;
        string full = Path.GetFullPath(guestPath.StartsWith('/') ? guestPath : Path.Combine(baseDir, guestPath));
        if (full.Length > 1) full = full.TrimEnd('/');
        if (full == SelfExe) return ProgramPath;
        if (!Within(full, _given) && !Within(full, _canonical)) return null;
        string? real = HostFiles.RealPath(full);
        if (real != null && !Within(real, _canonical)) return null;
        return full;
    }
}
