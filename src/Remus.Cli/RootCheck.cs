using System.Buffers.Binary;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Registry;

namespace Remus.Cli;

/// <summary>
/// Before any command: a run directory that belongs to another user (root's /run/remus, or a REMUS_RUN_DIR made by
/// root, or a /tmp/remus-UID someone else made first) is refused with one line, instead of an "access denied" half way
/// through — after a VMM started, or with a domain half registered. root may use any run directory; anyone else
/// only their own (the default for a user is $XDG_RUNTIME_DIR/remus or /tmp/remus-UID: see README). A run directory
/// that does not exist yet is fine: the command makes it, 0700, for the user running it.
/// </summary>
internal static class RootCheck
{
    private const int AtFdCwd = -100;
    private const int StUidOffset = 28; // struct stat on Linux x86-64: dev 8, ino 8, nlink 8, mode 4, uid 4

    /// <summary>null when this process may go on; otherwise the failure status, after the one line on stderr.</summary>
    public static int? Refuse(string[] args)
    {
        if (args.Length == 0 || args.Any(a => a is "--help" or "-h" or "-?" or "--version")) return null; // help needs no run directory
        uint me = HostOs.geteuid();
        if (me == 0) return null;
        var run = RunDirectory.FromEnvironment();
        if (OwnerOf(run.Path) is not { } owner || owner == me) return null;
        return Cli.Fail($"the run directory '{run.Path}' belongs to {UserName(owner)}, and this is uid {me}: run remus as that user " +
                        $"(sudo remus ...), or set {RunDirectory.EnvironmentVariable} to a directory of your own", Cli.FailureStatus);
    }

    /// <summary>The owner's uid of <paramref name="path"/> (not following a final symlink); null if it does not exist.</summary>
    private static uint? OwnerOf(string path)
    {
        Span<byte> stat = stackalloc byte[HostFiles.StatSize];
        const int AtSymlinkNoFollow = 0x100;
        if (HostDirectories.StatAt(AtFdCwd, path, AtSymlinkNoFollow, stat) < 0) return null;
        return BinaryPrimitives.ReadUInt32LittleEndian(stat[StUidOffset..]);
    }

    private static string UserName(uint uid) => uid == 0 ? "root (uid 0)" : $"uid {uid}";
}
