namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// Where one vCPU's private part of the platform area lies (<see cref="GuestLayout.Cpu"/>): its GDT and TSS (whose IST
/// pointers name its own exception stacks), the data slots and syscall stack its syscall stub uses, the stub itself
/// (its addresses are immediates, so a stub can touch nothing but its own vCPU's area, and LSTAR, a per-vCPU MSR the
/// program cannot write, picks it) and the resume frame the VMM writes for it. Nothing here is shared with another vCPU:
/// a syscall or an exception on vCPU 1 never touches vCPU 0's stack, saved rsp or frame.
/// </summary>
internal readonly record struct CpuArea(
    int Index,
    ulong Gdt,
    ulong Tss,
    ulong UserRspSave,
    ulong SyscallStackTop,
    ulong Ist1Top,
    ulong Ist2Top,
    ulong Rsp0Top,
    ulong SyscallStub,
    ulong SyscallStubFsgs,
    ulong ResumeFrame)
{
    /// <summary>Where the FSGSBASE syscall stub saves FS base.</summary>
    public ulong FsBaseSave => UserRspSave + 8;

    /// <summary>Where the FSGSBASE syscall stub saves GS base.</summary>
    public ulong GsBaseSave => UserRspSave + 16;

    /// <summary>The 5-qword frame the CPU pushes on IST1 when a user exception arrives (the error code, if the vector
    /// has one, sits just below it).</summary>
    public ulong Ist1Frame => Ist1Top - 5 * 8;

    public ulong Ist2Frame => Ist2Top - 5 * 8;

    /// <summary>The TSS selector of this vCPU's GDT (the same in every GDT).</summary>
    public ushort TssSelector => GuestLayout.TssSelector;
}
