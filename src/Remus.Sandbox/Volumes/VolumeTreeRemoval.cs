using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Volumes;

/// <summary>Removes names and whole trees relative to directory fds, never following a symlink.</summary>
internal static class VolumeTreeRemoval
{
    private const int Enoent = 2, Eisdir = 21;

    /// <summary>Removes whatever <paramref name="name"/> is in the directory (a directory with everything in it); absent is fine.</summary>
    public static void RemoveAny(int dirFd, string name)
    {
        long r = HostDirectories.UnlinkAt(dirFd, name, 0);
        if (r == 0 || r == -Enoent) return;
        if (r != -Eisdir && r != -1 /* EPERM: unlink of a directory on some file systems */)
            throw new IOException($"unlink '{name}': errno {-r}");
        int sub = HostDirectories.OpenAt2(dirFd, name, HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY | HostDirectories.O_NOFOLLOW, 0,
            HostDirectories.ResolveBeneath | HostDirectories.ResolveNoSymlinks);
        if (sub < 0) throw new IOException($"open directory '{name}' to empty it: errno {-sub}");
        try { RemoveContents(sub); }
        finally { HostFiles.Close(sub); }
        r = HostDirectories.UnlinkAt(dirFd, name, HostDirectories.AtRemoveDir);
        if (r < 0 && r != -Enoent) throw new IOException($"rmdir '{name}': errno {-r}");
    }

    /// <summary>Empties the directory open (O_RDONLY) at <paramref name="dirFd"/>.</summary>
    public static void RemoveContents(int dirFd)
    {
        foreach (var (name, _) in HostDirectoryListing.Read(dirFd)) RemoveAny(dirFd, name);
    }
}
