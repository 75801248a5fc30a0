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

/// <summary>Why <see cref="IVcpu.Run"/> returned.</summary>
public readonly record struct VcpuExit(VcpuExitKind Kind, int Signal = 0, ulong FaultAddress = 0)
{
    public static readonly VcpuExit SyscallExit = new(VcpuExitKind.Syscall);
    public static readonly VcpuExit KickedExit = new(VcpuExitKind.Kicked);
}
