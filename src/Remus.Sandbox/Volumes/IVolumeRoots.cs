namespace Remus.Sandbox.Volumes;

/// <summary>
/// What the replica needs of the file system's volume table (Kernel/Volumes, vol-fs): each volume's spec and the root
/// directory this domain uses for it — the live directory on a sender; on a receiver the staging copy
/// (<see cref="VolumeStaging"/>) or the private tmpfs directory — and the place to hang the journal.
/// The kernel's <see cref="Kernel.Volumes.VolumeTable"/> serves it through <see cref="VolumeTableRoots"/>.
/// </summary>
internal interface IVolumeRoots
{
    int Count { get; }

    VolumeSpec Spec(int volume);

    /// <summary>An O_PATH|O_DIRECTORY fd on the volume's root directory, owned by the table.</summary>
    int RootFd(int volume);

    /// <summary>Where the file system reports its mutations; null = nothing reported (the unprotected default).</summary>
    IVolumeJournal? Journal { get; set; }

    /// <summary>A receiver's Commit moved volume <paramref name="volume"/>'s directory to <paramref name="hostDir"/> (the fd follows).</summary>
    void Repoint(int volume, string hostDir);
}
