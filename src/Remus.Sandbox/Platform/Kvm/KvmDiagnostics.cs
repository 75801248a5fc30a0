using System.Text;
using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>The exception a stub reported: vector, error code and the CPU's frame on the IST stack.</summary>
internal readonly record struct ExceptionFrame(int Vector, ulong ErrorCode, ulong Rip, ulong Cs, ulong Rflags, ulong Rsp, ulong Ss);

/// <summary>
/// One block of text for the VMM log when the vCPU does something the platform did not plan for (an unexpected exit,
/// a fault in the stubs, a shutdown/triple fault): what happened, the exception (vector, error code, CR2, the
/// frame), the vCPU's registers, CS/SS with their DPL, and CR0/CR3/CR4/EFER (issue 7 item 7). Enough to tell, from a
/// log alone, e.g. that a stub ran at CPL 3 and took #PF on its own page.
/// </summary>
internal static class KvmDiagnostics
{
    public static string Describe(string what, in KvmRegs regs, KvmSregs? sregs, ExceptionFrame? exception)
    {
        var b = new StringBuilder();
        b.Append("KVM platform: ").Append(what);
        if (exception is { } e)
        {
            b.Append("\n  exception: ").Append(ExceptionMap.Name(e.Vector)).Append(" (vector ").Append(e.Vector).Append(')');
            b.Append(ExceptionMap.HasErrorCode(e.Vector) ? $", error code 0x{e.ErrorCode:x}" : ", no error code");
            if (sregs is { } s0) b.Append($", cr2 0x{s0.Cr2:x}");
            b.Append($"\n  frame: rip 0x{e.Rip:x} cs 0x{e.Cs:x} (rpl {e.Cs & 3}) rflags 0x{e.Rflags:x} rsp 0x{e.Rsp:x} ss 0x{e.Ss:x}");
            b.Append($"\n  at: {Where(e.Rip)}");
        }
        b.Append($"\n  vcpu: rip 0x{regs.Rip:x} ({Where(regs.Rip)}) rsp 0x{regs.Rsp:x} rflags 0x{regs.Rflags:x}");
        b.Append($"\n  rax 0x{regs.Rax:x} rcx 0x{regs.Rcx:x} rdx 0x{regs.Rdx:x} r11 0x{regs.R11:x}");
        if (sregs is { } s)
        {
            b.Append($"\n  cs 0x{s.Cs.Selector:x} dpl {s.Cs.Dpl} (CPL {s.Cs.Dpl}), ss 0x{s.Ss.Selector:x} dpl {s.Ss.Dpl}, tr 0x{s.Tr.Selector:x} limit 0x{s.Tr.Limit:x}");
            b.Append($"\n  cr0 0x{s.Cr0:x} cr2 0x{s.Cr2:x} cr3 0x{s.Cr3:x} cr4 0x{s.Cr4:x} efer 0x{s.Efer:x}");
        }
        else
        {
            b.Append("\n  (segment and control registers unavailable)");
        }
        return b.ToString();
    }

    /// <summary>Names the part of the reserved area an address falls in, or "program".</summary>
    public static string Where(ulong rip)
    {
        if (rip >= GuestLayout.ReservedSize) return "program";
        if (rip >= GuestLayout.SyscallStub && rip < GuestLayout.SyscallStub + Stubs.SyscallLength)
            return $"syscall stub +0x{rip - GuestLayout.SyscallStub:x}";
        if (rip >= GuestLayout.SyscallStubFsgs && rip < GuestLayout.SyscallStubFsgs + Stubs.SyscallFsgsLength)
            return $"FSGSBASE syscall stub +0x{rip - GuestLayout.SyscallStubFsgs:x}";
        if (rip >= GuestLayout.SiblingStubs && rip < GuestLayout.SiblingUser)
        {
            ulong offset = rip - GuestLayout.SiblingStubs;
            ulong cpu = offset / GuestLayout.SiblingStubSize, within = offset % GuestLayout.SiblingStubSize;
            return within < GuestLayout.SiblingFsgsStubOffset
                ? $"syscall stub of vCPU {cpu} +0x{within:x}"
                : $"FSGSBASE syscall stub of vCPU {cpu} +0x{within - GuestLayout.SiblingFsgsStubOffset:x}";
        }
        ulong stubsEnd = GuestLayout.ExceptionStubs + (ulong)(GuestLayout.IdtVectors * GuestLayout.ExceptionStubSize);
        if (rip >= GuestLayout.ExceptionStubs && rip < stubsEnd)
        {
            ulong offset = rip - GuestLayout.ExceptionStubs;
            return $"exception stub {offset / (ulong)GuestLayout.ExceptionStubSize} +0x{offset % (ulong)GuestLayout.ExceptionStubSize:x}";
        }
        return "reserved area";
    }
}
