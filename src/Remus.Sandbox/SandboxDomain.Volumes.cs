using Remus.Sandbox.Volumes;

namespace Remus.Sandbox;

/// <summary>The domain's volumes as the checkpoint engine replicates them (issue 10).</summary>
public sealed partial class SandboxDomain
{
    private VolumeReplica? _volumeReplica;

    /// <inheritdoc cref="ICheckpointable.Volumes"/>
    /// <remarks>Null when the domain has no volumes. The same replica serves both sides: a sender's copy and journal
    /// read the live roots, a receiver (an incoming domain) applies to its staging roots and commits them.</remarks>
    public IVolumeReplica? Volumes
    {
        get
        {
            if (VolumeTable.Count == 0) return null;
            if (_volumeReplica is null)
                Interlocked.CompareExchange(ref _volumeReplica, new VolumeReplica(new VolumeTableRoots(VolumeTable)), null);
            return _volumeReplica;
        }
    }
}
