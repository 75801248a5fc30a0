using System.Diagnostics;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// A receiver's copy becomes the volume: its staging directory (<see cref="VolumeStaging"/>) is renamed to the host
/// path. Content already there is moved aside to HostPath + ".remus-previous" (".remus-previous.1", ... when that is
/// taken), never deleted; a directory a live VMM on this host still holds (its flock) is waited for up to the patience.
/// </summary>
internal static class VolumeCommit
{
    public const string PreviousSuffix = ".remus-previous";
    private const int Enoent = 2, Ewouldblock = 11;

    public static void Commit(VolumeSpec spec, TimeSpan patience, Action<string>? say)
    {
        string host = spec.HostPath.TrimEnd('/');
        string staging = VolumeStaging.StagingPath(host);
        if (!System.IO.Directory.Exists(staging))
            throw new IOException($"volume {spec.GuestPath}: no copy at {staging} to commit");
        string? parent = Path.GetDirectoryName(host);
        if (!string.IsNullOrEmpty(parent)) System.IO.Directory.CreateDirectory(parent);

        int held = HostDirectories.OpenAt(HostDirectories.AtFdCwd, host, HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY | HostDirectories.O_NOFOLLOW, 0);
        if (held < 0 && held != -Enoent)
        {
            // Something that is not a directory (or unreadable): moved aside all the same.
            held = HostDirectories.OpenAt(HostDirectories.AtFdCwd, host, HostDirectories.O_PATH | HostDirectories.O_NOFOLLOW, 0);
            if (held < 0 && held != -Enoent) throw new IOException($"volume {spec.GuestPath}: cannot open {host}: errno {-held}");
        }
        try
        {
            if (held >= 0)
            {
                WaitForRelease(held, host, spec, patience);
                string previous = FreePrevious(host);
                long r = HostDirectories.RenameAt2(HostDirectories.AtFdCwd, host, HostDirectories.AtFdCwd, previous, HostDirectories.RenameNoReplace);
                if (r < 0) throw new IOException($"volume {spec.GuestPath}: cannot move {host} aside to {previous}: errno {-r}");
                say?.Invoke($"volume {spec.GuestPath}: the previous content of {host} is kept at {previous}");
            }
            long m = HostDirectories.RenameAt2(HostDirectories.AtFdCwd, staging, HostDirectories.AtFdCwd, host, HostDirectories.RenameNoReplace);
            if (m < 0) throw new IOException($"volume {spec.GuestPath}: cannot move the copy {staging} to {host}: errno {-m}");
        }
        finally { if (held >= 0) HostFiles.Close(held); }
    }

    /// <summary>Takes the directory's flock, waiting while another VMM holds it (up to the patience).</summary>
    private static void WaitForRelease(int fd, string host, VolumeSpec spec, TimeSpan patience)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            long r = HostDirectories.Flock(fd, HostDirectories.LockEx | HostDirectories.LockNb);
            if (r == 0) return;
            if (r == -9 /* EBADF: an O_PATH fd, not a directory */) return;
            if (r != -Ewouldblock) throw new IOException($"volume {spec.GuestPath}: flock {host}: errno {-r}");
            if (clock.Elapsed >= patience)
                throw new IOException($"volume {spec.GuestPath}: {host} is still in use by another VMM on this host (waited {patience.TotalSeconds:0.#} s)");
            Thread.Sleep(20);
        }
    }

    private static string FreePrevious(string host)
    {
        string p = host + PreviousSuffix;
        for (int i = 1; Path.Exists(p) || IsDanglingLink(p); i++) p = $"{host}{PreviousSuffix}.{i}";
        return p;
    }

    private static bool IsDanglingLink(string p)
    {
        try { return new FileInfo(p).LinkTarget is not null; }
        catch (IOException) { return false; }
    }
}
