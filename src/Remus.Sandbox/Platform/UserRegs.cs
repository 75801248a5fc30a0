using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The guest's general registers, laid out as Linux's x86-64 <c>struct user_regs_struct</c> (ptrace's view).
/// The kernel layer reads syscall numbers and arguments from it and writes results into it; each platform moves
/// it in and out of its vCPU (PTRACE_GETREGS/SETREGS, or KVM regs + FS/GS base MSRs).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct UserRegs
{
    public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8, Rax, Rcx, Rdx, Rsi, Rdi, OrigRax;
    public ulong Rip, Cs, Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs, Gs;
}
