using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>Record locks and flocks in the kernel state (version 6): owned by Kernel/Locks.</summary>
internal sealed partial class SandboxKernel
{
    private void SaveLocks(BinaryWriter w, Dictionary<FileDescription, int> indexOf) => w.Write(0);

    private void LoadLocks(BinaryReader r, List<FileDescription> descriptions)
    {
        if (r.ReadInt32() != 0) throw new SandboxException("corrupt kernel state in the checkpoint (locks)");
    }
}
