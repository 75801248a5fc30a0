namespace Remus.Sandbox.Volumes;

/// <summary>
/// A writable host directory the program sees as a normal file tree at <see cref="GuestPath"/> (config
/// <c>[[volume]]</c>, <c>remus run --volume SRC:TARGET</c>; docs/storage.md). Paths cannot leave it: lookups are
/// resolved inside it as a chroot would (<c>..</c> and symlinks stop at its root). Under Remus every change the program
/// makes to it travels with the checkpoint and reaches the backup's copy only when that checkpoint commits.
/// </summary>
public sealed record VolumeSpec
{
    /// <summary>
    /// Absolute host directory (created if missing). A receiver (backup, migration target, restore) builds its copy
    /// elsewhere first and moves it here when the copy becomes the domain's (see <see cref="IVolumeReplica.Commit"/>).
    /// Ignored for <see cref="Tmpfs"/>.
    /// </summary>
    public string HostPath { get; init; } = "";

    /// <summary>Absolute, normalised guest path of the mount point (not "/"; no two volumes at the same one).</summary>
    public required string GuestPath { get; init; }

    /// <summary>
    /// A tmpfs (the default <c>/tmp</c>): its content is the domain's, in memory — a private directory on the host's
    /// RAM (/dev/shm) made empty when the domain starts and removed with it, checkpointed and replicated like any volume.
    /// </summary>
    public bool Tmpfs { get; init; }
}
