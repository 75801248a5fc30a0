using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The files the kernel provides itself instead of taking them from the host: the memory devices (/dev/null,
/// /dev/zero, /dev/full, /dev/random, /dev/urandom) and /proc/self/maps (also as /proc/thread-self/maps and
/// /proc/1/maps), and the CPU lists of /sys/devices/system/cpu (SysCpuFiles.cs). Looked up before the domain's file policy, by open, stat and access.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int O_EXCL = 0x80, O_NOCTTY = 0x100, O_LARGEFILE = 0x8000;

    private static readonly HashSet<string> MapsPaths = ["/proc/self/maps", "/proc/thread-self/maps", $"/proc/{Pid}/maps"];

    /// <summary>The absolute path when <paramref name="path"/> names a special file, else null.</summary>
    private static string? SpecialPath(string path, string baseDir)
    {
        if (path.Length == 0) return null;
        string full = Path.GetFullPath(path.StartsWith('/') ? path : Path.Combine(baseDir, path));
        return DeviceFile.Minors.ContainsKey(full) || MapsPaths.Contains(full) || CpuListPaths.Contains(full) ? full : null;
    }

    private long OpenSpecial(string path, int flags)
    {
        if ((flags & O_DIRECTORY) != 0) return -Errno.ENOTDIR;
        if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return -Errno.EEXIST;
        int kept = (flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC)) | O_LARGEFILE;
        FileDescription f;
        if (MapsPaths.Contains(path))
        {
            if ((flags & O_ACCMODE) != 0) return -Errno.EACCES;
            f = new ProcFile(path, ProcFile.Maps(Mm, Policy.ProgramPath)) { Flags = kept };
        }
        else if (CpuListPaths.Contains(path))
        {
            if ((flags & O_ACCMODE) != 0) return -Errno.EACCES;
            f = new ProcFile(path, CpuList()) { Flags = kept };
        }
        else f = new DeviceFile(path) { Flags = kept };
        return Fds.Add(f, (flags & O_CLOEXEC) != 0);
    }

    private static long StatSpecial(string path, Span<byte> st) =>
        MapsPaths.Contains(path) || CpuListPaths.Contains(path) ? ProcFile.StatProc(st) : DeviceFile.StatDevice(path, st);

    private static long AccessSpecial(string path, int mode) =>
        (MapsPaths.Contains(path) || CpuListPaths.Contains(path)) && (mode & 2) != 0 ? -Errno.EACCES : 0;
}
