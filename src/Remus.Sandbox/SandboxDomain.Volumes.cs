using Remus.Sandbox.Volumes;

namespace Remus.Sandbox;

/// <summary>The domain's volumes as the checkpoint engine replicates them (issue 10).</summary>
public sealed partial class SandboxDomain
{
    /// <inheritdoc cref="ICheckpointable.Volumes"/>
    public IVolumeReplica? Volumes => null;
}
