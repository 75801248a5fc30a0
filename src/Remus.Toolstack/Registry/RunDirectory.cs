using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Registry;

/// <summary>
/// The run directory (<c>$REMUS_RUN_DIR</c>, default <c>/run/remus</c> for root, else
/// <c>$XDG_RUNTIME_DIR/remus</c> or <c>/tmp/remus-&lt;uid&gt;</c>). Layout:
/// <code>
/// lock               flock(2)ed while allocating ids, checking names, registering, renaming, sweeping
/// next-id            the next domain id (ids only grow, like xl domids; the first domain is 1)
/// domains/ID.json    the registry entry of a running domain, written only by its VMM
/// domains/ID.sock    that VMM's control socket
/// logs/ID.log        that VMM's log: lifecycle events and the program's exit status (kept after the VMM exits)
/// </code>
/// A domain is live while its socket accepts connections; an entry whose socket refuses (the VMM died) is stale and
/// is removed silently by whoever finds it.
/// </summary>
public sealed class RunDirectory
{
    public const string EnvironmentVariable = "REMUS_RUN_DIR";

    public RunDirectory(string path) => Path = System.IO.Path.GetFullPath(path);

    public string Path { get; }

    /// <summary>The run directory named by the environment (see the class summary).</summary>
    public static RunDirectory FromEnvironment()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(configured)) return new RunDirectory(configured);
        var uid = HostOs.geteuid();
        if (uid == 0) return new RunDirectory("/run/remus");
        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return new RunDirectory(!string.IsNullOrEmpty(runtime) ? System.IO.Path.Combine(runtime, "remus") : $"/tmp/remus-{uid}");
    }

    public string LockFile => System.IO.Path.Combine(Path, "lock");
    public string NextIdFile => System.IO.Path.Combine(Path, "next-id");
    public string DomainsDirectory => System.IO.Path.Combine(Path, "domains");
    public string LogsDirectory => System.IO.Path.Combine(Path, "logs");
    public string RecordPath(int id) => System.IO.Path.Combine(DomainsDirectory, $"{id}.json");
    public string SocketPath(int id) => System.IO.Path.Combine(DomainsDirectory, $"{id}.sock");
    public string LogPath(int id) => System.IO.Path.Combine(LogsDirectory, $"{id}.log");

    /// <summary>Creates the run directory and its subfolders if needed.</summary>
    public void EnsureExists()
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("remus runs on Linux");
        try
        {
            // 0700 throughout: the control sockets (domains/ID.sock) accept any connecting process and obey it, and
            // the lock could be taken by anyone who can open it. A run directory that already exists is left as it is
            // (REMUS_RUN_DIR may name a folder of the user's); domains/ and logs/ are remus's own and made private.
            Directory.CreateDirectory(Path, Private);
            MakePrivate(DomainsDirectory);
            MakePrivate(LogsDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RemusException($"cannot create run directory '{Path}': {e.Message} (set {EnvironmentVariable} to another folder)");
        }
    }

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void MakePrivate(string directory)
    {
        Directory.CreateDirectory(directory, Private);
        if ((File.GetUnixFileMode(directory) & ~Private) != 0) File.SetUnixFileMode(directory, Private); // made looser before
    }

    /// <summary>Takes the run directory's lock (creating the directory first); dispose to release.</summary>
    public FileLock Lock()
    {
        EnsureExists();
        return FileLock.Acquire(LockFile, TimeSpan.FromSeconds(30));
    }
}
