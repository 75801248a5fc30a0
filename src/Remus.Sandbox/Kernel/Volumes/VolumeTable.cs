using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;

namespace Remus.Sandbox.Kernel.Volumes;

/// <summary>
/// The domain's volumes (issue 10): each one's root directory, opened once on the host and held with
/// flock(LOCK_EX|LOCK_NB) while the domain lives (a second VMM on this host cannot use it), the guest mount point it
/// is seen at, and the volume files open in it (so that renames and unlinks keep their paths current). Every lookup
/// under a mount point is resolved inside the root (openat2 RESOLVE_IN_ROOT: VolumeTable.Names.cs).
/// An incoming domain (a receiver: backup, migration target, restore) opens each root at its staging directory
/// (<see cref="VolumeStaging.StagingPath"/>, made empty first); the replica moves it into place later, and the root
/// fd follows the rename. Tmpfs volumes get a private empty directory under /dev/shm, removed at <see cref="Dispose"/>.
/// </summary>
internal sealed partial class VolumeTable : IDisposable
{
    /// <summary>The VMM's own directory at each volume's root (open files the program unlinked): invisible to it.</summary>
    public const string OrphansName = ".remus-orphans";

    private const string ShmDir = "/dev/shm";

    private readonly Volume[] _volumes;

    /// <summary>One volume: where it is on the host and in the guest, and what is open in it.</summary>
    internal sealed class Volume
    {
        public required int Index { get; init; }
        public required VolumeSpec Spec { get; init; }
        public required string GuestPath { get; init; }
        public required int RootFd { get; init; }

        /// <summary>Where the root was opened (HostPath, its staging directory, or the tmpfs's private directory),
        /// then where it was moved to (<see cref="VolumeTable.Repoint"/>). For messages.</summary>
        public required string HostDir { get; set; }

        /// <summary>The tmpfs's private directory (removed at dispose); null for other volumes.</summary>
        public string? PrivateDir { get; init; }

        /// <summary>The next name in .remus-orphans (kernel state).</summary>
        public long NextOrphan { get; set; }

        public List<VolumeFile> Open { get; } = [];
    }

    public VolumeTable(IReadOnlyList<VolumeSpec> specs, bool incoming)
    {
        _volumes = new Volume[specs.Count];
        try
        {
            for (int i = 0; i < specs.Count; i++)
            {
                _volumes[i] = OpenVolume(i, specs[i], incoming);
                for (int j = 0; j < i; j++)
                    if (_volumes[j].GuestPath == _volumes[i].GuestPath)
                        throw new SandboxException($"two volumes are mounted at {_volumes[i].GuestPath}");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count => _volumes.Length;

    /// <summary>Told of every mutation that succeeded (the replica's journal); null: nobody listens.</summary>
    public IVolumeJournal? Journal { get; set; }

    public Volume this[int index] => _volumes[index];

    /// <summary>The root fd of volume <paramref name="index"/> (a directory, flock'ed; follows renames of the directory).</summary>
    public int RootFd(int index) => _volumes[index].RootFd;

    /// <summary>Where volume <paramref name="index"/> is on the host now (as last told: see <see cref="Repoint"/>).</summary>
    public string HostDir(int index) => _volumes[index].HostDir;

    public VolumeSpec Spec(int index) => _volumes[index].Spec;

    /// <summary>
    /// Volume <paramref name="index"/>'s directory was renamed to <paramref name="hostDir"/> (a receiver's Commit moved
    /// the staging directory into place). The root fd already follows it; this only updates what messages say.
    /// </summary>
    public void Repoint(int index, string hostDir) => _volumes[index].HostDir = hostDir;

    private const string TmpfsPrefix = "remus-tmpfs-";

    /// <summary>
    /// Removes the tmpfs directories of VMMs that are gone (a VMM killed with SIGKILL — every Remus failover — cannot
    /// remove its own): each is named after its VMM's pid, and one whose pid no longer exists is nobody's. A pid reused
    /// by another process keeps its directory until that one is gone too (never a live domain's).
    /// </summary>
    private static void RemoveStaleTmpfs()
    {
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(ShmDir, TmpfsPrefix + "*"))
            {
                string rest = Path.GetFileName(dir)[TmpfsPrefix.Length..];
                int dash = rest.IndexOf('-');
                if (dash <= 0 || !int.TryParse(rest[..dash], out int pid) || Directory.Exists($"/proc/{pid}")) continue;
                try { Directory.Delete(dir, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* another VMM got there first */ }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* nothing to clean */ }
    }

    private static Volume OpenVolume(int index, VolumeSpec spec, bool incoming)
    {
        string guest = NormaliseGuestPath(spec.GuestPath);
        string dir;
        string? privateDir = null;
        if (spec.Tmpfs)
        {
            RemoveStaleTmpfs();
            privateDir = Path.Combine(ShmDir, $"{TmpfsPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
            Directory.CreateDirectory(privateDir);
            dir = privateDir;
        }
        else
        {
            if (!Path.IsPathRooted(spec.HostPath))
                throw new SandboxException($"volume {spec.GuestPath}: the host path must be absolute (got \"{spec.HostPath}\")");
            dir = incoming ? VolumeStaging.StagingPath(spec.HostPath) : spec.HostPath.TrimEnd('/');
            if (incoming && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            try { Directory.CreateDirectory(dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SandboxException($"volume {dir}: cannot create it: {e.Message}");
            }
        }
        int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, dir, HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY, 0);
        if (fd < 0)
        {
            if (privateDir != null) Directory.Delete(privateDir, true);
            throw new SandboxException($"volume {dir}: cannot open it: {Libc.ErrnoText(-fd)}");
        }
        if (HostDirectories.Flock(fd, HostDirectories.LockEx | HostDirectories.LockNb) < 0)
        {
            HostFiles.Close(fd);
            throw new SandboxException($"volume {dir} is in use by another domain on this host");
        }
        // What a previous run left in .remus-orphans is no one's any more (its files were open when it ended).
        if (!incoming && !spec.Tmpfs && Directory.Exists(Path.Combine(dir, OrphansName)))
            Directory.Delete(Path.Combine(dir, OrphansName), recursive: true);
        return new Volume { Index = index, Spec = spec, GuestPath = guest, RootFd = fd, HostDir = dir, PrivateDir = privateDir };
    }

    private static string NormaliseGuestPath(string p)
    {
        string n = "/" + string.Join('/', p.Split('/', StringSplitOptions.RemoveEmptyEntries));
        if (n == "/") throw new SandboxException("a volume cannot be mounted at /");
        return n;
    }

    /// <summary>
    /// The volume a guest path (absolute) is in, with the rest of the path relative to its root, as written (the
    /// root resolves it, ".." included). The mount point is found lexically ("." and ".." before it as names, "//"
    /// as one), the longest one first. False when the path is in no volume.
    /// </summary>
    public bool TryLookup(string guestPath, out int volume, out string relative)
    {
        volume = -1;
        relative = "";
        if (_volumes.Length == 0) return false;
        var parts = guestPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var stack = new List<string>(parts.Length);
        int best = -1, bestAt = 0;
        for (int i = 0; i <= parts.Length; i++)
        {
            string current = "/" + string.Join('/', stack);
            int at = IndexOfMount(current);
            if (at >= 0)
            {
                best = at;
                bestAt = i;
                // Only go on lexically while a longer mount point could still match.
                int next = i;
                while (next < parts.Length && parts[next] == ".") next++;
                if (next == parts.Length || !AnyMountUnder(current, parts[next])) break;
            }
            if (i == parts.Length) break;
            string c = parts[i];
            if (c == ".") continue;
            if (c == "..")
            {
                if (best >= 0) break; // inside a volume: its root resolves ".." (it stops there)
                if (stack.Count > 0) stack.RemoveAt(stack.Count - 1);
                continue;
            }
            stack.Add(c);
        }
        if (best < 0) return false;
        volume = best;
        relative = string.Join('/', parts.AsSpan(bestAt).ToArray());
        if (guestPath.EndsWith('/') && relative.Length > 0) relative += "/";
        return true;
    }

    private int IndexOfMount(string guest)
    {
        for (int i = 0; i < _volumes.Length; i++) if (_volumes[i].GuestPath == guest) return i;
        return -1;
    }

    private bool AnyMountUnder(string current, string next)
    {
        string prefix = (current == "/" ? "/" : current + "/") + next;
        foreach (var v in _volumes)
            if (v.GuestPath == prefix || v.GuestPath.StartsWith(prefix + "/", StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>
    /// The volume mounted below <paramref name="guestPath"/> (absolute, outside every volume), or -1: the directories
    /// above a mount point exist for stat and access, as Linux's mount points have parents (SQLite and realpath look).
    /// </summary>
    public int VolumeBelow(string guestPath)
    {
        string n = "/" + string.Join('/', Path.GetFullPath(guestPath).Split('/', StringSplitOptions.RemoveEmptyEntries));
        string prefix = n == "/" ? "/" : n + "/";
        for (int i = 0; i < _volumes.Length; i++)
            if (_volumes[i].GuestPath.StartsWith(prefix, StringComparison.Ordinal)) return i;
        return -1;
    }

    /// <summary>The guest path of <paramref name="relative"/> in volume <paramref name="index"/>.</summary>
    public string GuestPathOf(int index, string relative) =>
        relative.Length == 0 ? _volumes[index].GuestPath : _volumes[index].GuestPath + "/" + relative;

    internal void Opened(VolumeFile f) => _volumes[f.Volume].Open.Add(f);

    internal void Closed(VolumeFile f)
    {
        var v = _volumes[f.Volume];
        if (v == null) return; // disposed
        v.Open.Remove(f);
        if (IsHidden(f.Path) && !IsOpen(f.Volume, f.Path)) RemoveOrphan(f.Volume, f.Path, f.IsDirectory);
    }

    public void Dispose()
    {
        foreach (var v in _volumes)
        {
            if (v == null) continue;
            HostFiles.Close(v.RootFd); // the flock goes with it
            if (v.PrivateDir != null)
            {
                try { Directory.Delete(v.PrivateDir, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        Array.Clear(_volumes);
    }
}
