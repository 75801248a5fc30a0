namespace Remus.Sandbox.Kernel;

/// <summary>
/// The runtime surface's state in KERNEL_STATE (version 3): a tagged section after the signals, absent from
/// checkpoints written before it (then the defaults stand). Today: the prctl attributes (Prctl.cs).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const uint RuntimeSurfaceTag = 0x52535552; // "RUSR"

    private void SaveRuntimeSurface(BinaryWriter w)
    {
        w.Write(RuntimeSurfaceTag);
        SaveProcessAttributes(w);
    }

    private void LoadRuntimeSurface(BinaryReader r)
    {
        if (r.BaseStream.Position == r.BaseStream.Length) return; // an older checkpoint: nothing was set
        if (r.ReadUInt32() != RuntimeSurfaceTag) throw new SandboxException("corrupt kernel state in the checkpoint (runtime surface)");
        LoadProcessAttributes(r);
    }
}
