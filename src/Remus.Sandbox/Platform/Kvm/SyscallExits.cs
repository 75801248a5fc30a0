namespace Remus.Sandbox.Platform.Kvm;

/// <summary>What an <c>out</c> to <see cref="GuestLayout.SyscallPort"/> was.</summary>
internal enum SyscallPortExit
{
    /// <summary>The active stub's <c>out</c>, rip still at it, at CPL 0: stock KVM (VMX or SVM, Linux 5.1 and later
    /// defer skipping the instruction to the next KVM_RUN).</summary>
    StubAtOut,
    /// <summary>The active stub's <c>out</c>, rip just past it, at CPL 3: kvm_pvm.</summary>
    StubAfterOut,
    /// <summary>Anything else: the program wrote port 0x20 from its own code (the TSS I/O bitmap lets ring 3 reach that
    /// one port, see <see cref="Descriptors.WriteTss"/>). Linux answers a user <c>out</c> with #GP, i.e. SIGSEGV.</summary>
    Stray,
}

/// <summary>
/// Decides whether a port-0x20 exit is a system call (issue 7 fact 3): exactly two rip values are accepted, the
/// active syscall stub's <c>out</c> and the instruction after it, because the two kinds of KVM report that exit
/// differently. A check that accepts only one of them breaks the other kind.
/// </summary>
internal static class SyscallExits
{
    /// <summary>Bytes of <c>out imm8, al</c> (e6 20).</summary>
    public const int OutLength = 2;

    /// <summary>Address of the <c>out</c> in the syscall stub that LSTAR points to.</summary>
    public static ulong OutAddress(bool fsgsStub) => OutAddress(fsgsStub, GuestLayout.Cpu0);

    /// <summary>The same for vCPU <paramref name="cpu"/>'s stub: another vCPU's stub is not this vCPU's syscall path.</summary>
    public static ulong OutAddress(bool fsgsStub, CpuArea cpu) =>
        CpuConfig.LstarFor(fsgsStub, cpu) + (ulong)(fsgsStub ? Stubs.SyscallFsgsOutOffset : Stubs.SyscallOutOffset);

    public static SyscallPortExit Classify(ulong rip, bool fsgsStub) => Classify(rip, fsgsStub, GuestLayout.Cpu0);

    public static SyscallPortExit Classify(ulong rip, bool fsgsStub, CpuArea cpu)
    {
        ulong at = OutAddress(fsgsStub, cpu);
        if (rip == at) return SyscallPortExit.StubAtOut;
        if (rip == at + OutLength) return SyscallPortExit.StubAfterOut;
        return SyscallPortExit.Stray;
    }
}
