namespace Remus.Kvm;

/// <summary><c>kvm_run.exit_reason</c>: the KVM_EXIT_* values of &lt;linux/kvm.h&gt; (KVM_EXIT_IO is <see cref="Io"/>,
/// KVM_EXIT_FAIL_ENTRY is <see cref="FailEntry"/>, ...). Checked against the headers by a test.</summary>
public enum KvmExitReason : uint
{
    Unknown = 0,
    Exception = 1,
    Io = 2,
    Hypercall = 3,
    Debug = 4,
    Hlt = 5,
    Mmio = 6,
    IrqWindowOpen = 7,
    /// <summary>Triple fault (or an unrecoverable VMX/SVM shutdown): the vCPU cannot continue.</summary>
    Shutdown = 8,
    /// <summary>VM entry failed; see <see cref="KvmExit.HardwareEntryFailureReason"/>.</summary>
    FailEntry = 9,
    /// <summary>KVM_RUN returned EINTR: a signal arrived (a <see cref="VcpuKicker"/> kick) or
    /// <c>immediate_exit</c> was set. Not an error; the run loop decides whether to run again.</summary>
    Intr = 10,
    SetTpr = 11,
    TprAccess = 12,
    Nmi = 16,
    InternalError = 17,
    Watchdog = 21,
    Epr = 23,
    SystemEvent = 24,
    IoapicEoi = 26,
    Hyperv = 27,
    X86Rdmsr = 29,
    X86Wrmsr = 30,
    DirtyRingFull = 31,
    ApResetHold = 32,
    X86BusLock = 33,
    Xen = 34,
    Notify = 37,
}
