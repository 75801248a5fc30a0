using Remus.Sandbox.Kernel.Volumes;

namespace Remus.Sandbox.Volumes;

/// <summary>The kernel's volume table as the replica sees it.</summary>
internal sealed class VolumeTableRoots(VolumeTable table) : IVolumeRoots
{
    public int Count => table.Count;
    public VolumeSpec Spec(int volume) => table.Spec(volume);
    public int RootFd(int volume) => table.RootFd(volume);

    public IVolumeJournal? Journal
    {
        get => table.Journal;
        set => table.Journal = value;
    }

    public void Repoint(int volume, string hostDir) => table.Repoint(volume, hostDir);
}
