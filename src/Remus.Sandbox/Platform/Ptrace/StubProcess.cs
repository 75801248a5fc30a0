namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// What the threads of one stub process share: its pid (the thread group), its one address space (in the paged
/// model: which program pages the stub maps to which frames) and that address space's dirty log, which any of its
/// vCPUs starts, harvests and re-arms (a userfaultfd belongs to the mm, not to a thread).
/// </summary>
internal sealed class StubProcess(int pid, bool paged)
{
    public int Pid { get; } = pid;

    /// <summary>Whether the program's address space is paged (docs/memory.md): pages are mapped on first touch.</summary>
    public bool Paged { get; } = paged;

    /// <summary>Paged: what the stub maps, program page → guest frame (the dirty log reports frames through it).</summary>
    public Dictionary<ulong, ulong> Pages { get; } = [];

    /// <summary>Held while the stub's mappings change and while a harvest scans them (from another thread): a scan
    /// must never meet a mapping not yet registered with the dirty log (PAGEMAP_SCAN refuses it: EPERM).</summary>
    public Lock MapLock { get; } = new();

    /// <summary>Whether the stub ever had a second thread (set before its clone, sticky): the dirty log's cold regions
    /// are then left mapped, as unmapping one safely would need every thread stopped.</summary>
    public volatile bool MultiThreaded;

    /// <summary>Set once by the first StartDirtyLog (under a lock on this object).</summary>
    public PtraceDirtyLog? DirtyLog { get; set; }
}
