namespace Remus.Sandbox.Platform;

public enum VcpuExitKind
{
    /// <summary>The guest executed <c>syscall</c>; the number is in OrigRax, arguments in rdi, rsi, rdx, r10, r8, r9.</summary>
    Syscall,
    /// <summary>The guest faulted; <see cref="VcpuExit.Signal"/> is the Linux signal it maps to.</summary>
    Fault,
    /// <summary>Another thread kicked the vCPU (pause, checkpoint, kill). Possibly spurious.</summary>
    Kicked,
}

/// <summary>Why <see cref="IVcpu.Run"/> returned. For a fault, <see cref="Code"/> is the si_code Linux gives it
/// (SEGV_MAPERR, SI_KERNEL...), <see cref="Trap"/> the x86 vector and <see cref="ErrorCode"/> its error code when
/// known (-1 / 0 otherwise): what siginfo and the frame's sigcontext report.</summary>
public readonly record struct VcpuExit(VcpuExitKind Kind, int Signal = 0, ulong FaultAddress = 0, int Code = 0x80, int Trap = -1, ulong ErrorCode = 0)
{
    public static readonly VcpuExit SyscallExit = new(VcpuExitKind.Syscall);
    public static readonly VcpuExit KickedExit = new(VcpuExitKind.Kicked);
}
