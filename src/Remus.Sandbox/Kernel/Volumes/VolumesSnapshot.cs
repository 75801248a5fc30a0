using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>Volume files in the kernel state (version 6): owned by the volume file system (Kernel/Volumes).</summary>
internal sealed partial class SandboxKernel
{
    /// <summary>Writes an open volume file (kind byte first) and returns true; false for any other file.</summary>
    private static bool SaveVolumeFile(BinaryWriter w, FileDescription f) => false;

    /// <summary>Reopens a volume file of kind <paramref name="kind"/>; null when the kind is not a volume file's.</summary>
    private FileDescription? LoadVolumeFile(byte kind, BinaryReader r, int flags) => null;

    /// <summary>The volumes' own state (after every open file).</summary>
    private void SaveVolumes(BinaryWriter w) { }

    private void LoadVolumes(BinaryReader r) { }
}
