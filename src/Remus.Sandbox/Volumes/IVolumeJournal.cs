namespace Remus.Sandbox.Volumes;

/// <summary>
/// What the file system (Kernel/Volumes) reports after each mutation of a volume that succeeded on the host, in the
/// order the program made them (calls are serialised under the kernel lock). <paramref name="volume"/> is the index
/// in <see cref="DomainSpec.Volumes"/>. Paths are relative to the volume's root and canonical: "a/b/c", no leading
/// slash, no "." or "..", every symlink resolved except a last component the call does not follow — so a receiver
/// can replay them on its copy. "" is the root. Data in <see cref="Wrote"/> is only valid during the call.
/// </summary>
internal interface IVolumeJournal
{
    /// <summary>A regular file was created (open with O_CREAT that made it), with its resulting mode (umask applied).</summary>
    void Created(int volume, string path, uint mode);

    /// <summary>Bytes written at an offset (the offset really used: for O_APPEND, the end of the file then).</summary>
    void Wrote(int volume, string path, long offset, ReadOnlySpan<byte> data);

    void Truncated(int volume, string path, long size);

    /// <summary>fallocate mode 0 (the size may grow).</summary>
    void Allocated(int volume, string path, long offset, long length);

    void MadeDirectory(int volume, string path, uint mode);
    void RemovedDirectory(int volume, string path);
    void Unlinked(int volume, string path);

    /// <summary>renameat2 with its flags (0, RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2).</summary>
    void Renamed(int volume, string from, string to, uint flags);

    void Linked(int volume, string existing, string newPath);
    void Symlinked(int volume, string target, string path);
    void ChangedMode(int volume, string path, uint mode);

    /// <summary>The times the file has after the call (UTIME_NOW resolved), in ns since the epoch.</summary>
    void ChangedTimes(int volume, string path, long atimeNs, long mtimeNs);
}
