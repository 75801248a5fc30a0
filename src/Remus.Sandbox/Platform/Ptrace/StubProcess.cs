namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// What the threads of one stub process share: its pid (the thread group) and the dirty log of its one address
/// space, which any of its vCPUs starts, harvests and re-arms (a userfaultfd belongs to the mm, not to a thread).
/// </summary>
internal sealed class StubProcess(int pid)
{
    public int Pid { get; } = pid;

    /// <summary>Set once by the first StartDirtyLog (under a lock on this object).</summary>
    public PtraceDirtyLog? DirtyLog { get; set; }
}
