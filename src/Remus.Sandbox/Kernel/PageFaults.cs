using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Demand paging (paged address space): a page fault on a page a mapping allows is backed with a frame and the
/// program goes on at the faulting instruction; one it does not allow is SIGSEGV with the si_code Linux gives
/// (SEGV_MAPERR: no mapping; SEGV_ACCERR: a mapping without the right), and a touch that finds RAM full is SIGBUS,
/// logged.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const ulong NoDemandPage = ulong.MaxValue;
    private const int SEGV_MAPERR = 1, SEGV_ACCERR = 2, BUS_ADRERR = 2, PageFaultVector = 14;

    /// <summary>The page the thread's last demand fault backed, until it makes progress (a system call): a second
    /// fault there means the platform could not map it, which must end in a signal, not a loop. Per thread: another
    /// thread faulting on the page just backed (it faulted before the mapping existed) is backed again, not killed.</summary>
    private ref ulong _lastDemandPage => ref Current.LastDemandPage;

    /// <summary>
    /// Settles a fault exit: true when it was a demand fault now backed (run on); false when <paramref name="exit"/>
    /// (its si_code or signal adjusted) is to be delivered.
    /// </summary>
    public bool TryDemandFault(ref VcpuExit exit)
    {
        if (!Mm.Paged || exit.Signal != SIGSEGV) return false;
        // A page-fault exception (KVM) says whether it was a write; ptrace says SEGV_MAPERR when the stub has nothing
        // mapped there (SEGV_ACCERR: it maps the page with the mapping's own rights, so the access is not allowed).
        bool pageFault = exit.Trap == PageFaultVector || (exit.Trap < 0 && exit.Code == SEGV_MAPERR);
        if (!pageFault) return false;
        bool write = exit.Trap == PageFaultVector && (exit.ErrorCode & 2) != 0;
        bool fetch = exit.Trap == PageFaultVector && (exit.ErrorCode & 0x10) != 0; // I/D: an instruction fetch (NX)
        ulong page = exit.FaultAddress & ~(AddressSpace.PageSize - 1);
        if (page == _lastDemandPage)
        {
            Log?.Invoke($"the fault at 0x{exit.FaultAddress:x} came back after the page was backed: the platform could not map it (SIGBUS)");
            exit = exit with { Signal = SIGBUS, Code = BUS_ADRERR };
            _lastDemandPage = NoDemandPage;
            return false;
        }
        switch (Mm.ResolveFault(exit.FaultAddress, write, fetch))
        {
            case FaultResolution.Resolved:
                _lastDemandPage = page;
                return true;
            case FaultResolution.NotMapped:
                exit = exit with { Code = SEGV_MAPERR };
                return false;
            case FaultResolution.NotAllowed:
                exit = exit with { Code = SEGV_ACCERR };
                return false;
            default:
                Log?.Invoke($"out of memory: the program touched 0x{exit.FaultAddress:x} and no frame of the domain's {Mm.Memory.Size >> 20} MiB is free (SIGBUS)");
                exit = exit with { Signal = SIGBUS, Code = BUS_ADRERR };
                return false;
        }
    }
}
