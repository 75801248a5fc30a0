namespace Remus.Sandbox.Volumes;

/// <summary>
/// Where a receiver (Remus backup, migration target, restore) builds its copy of a volume before it becomes the
/// domain's: a sibling of the volume's host path, so that <see cref="IVolumeReplica.Commit"/> is a rename on the
/// same file system. Owned by the replica (Volumes/); the file system opens an incoming domain's roots here.
/// </summary>
public static class VolumeStaging
{
    public const string IncomingSuffix = ".remus-incoming";

    /// <summary>The staging directory of a volume with host path <paramref name="hostPath"/>.</summary>
    public static string StagingPath(string hostPath) => hostPath.TrimEnd('/') + IncomingSuffix;
}
