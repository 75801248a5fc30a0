namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// x86 exception vectors as Linux (arch/x86/kernel/traps.c, fault.c) turns them into signals for a user task, and the
/// si_addr it reports. Vectors Linux never sends to a user task (NMI, #DF, #MC, reserved ones) map to 0: the VMM
/// treats them as a platform failure.
/// </summary>
internal static class ExceptionMap
{
    public const int SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGFPE = 8, SIGSEGV = 11;

    public const int DivideError = 0, Debug = 1, Nmi = 2, Breakpoint = 3, Overflow = 4, BoundRange = 5,
        InvalidOpcode = 6, DeviceNotAvailable = 7, DoubleFault = 8, CoprocessorOverrun = 9, InvalidTss = 10,
        SegmentNotPresent = 11, StackFault = 12, GeneralProtection = 13, PageFault = 14, X87Error = 16,
        AlignmentCheck = 17, MachineCheck = 18, SimdError = 19, Virtualization = 20, ControlProtection = 21;

    /// <summary>True for the vectors whose frame carries an error code (SDM vol. 3A, table 6-1).</summary>
    public static bool HasErrorCode(int vector) => vector is 8 or 10 or 11 or 12 or 13 or 14 or 17 or 21 or 29 or 30;

    /// <summary>The Linux signal for a user-mode exception, or 0 when Linux would not deliver one.</summary>
    public static int Signal(int vector) => vector switch
    {
        DivideError => SIGFPE,              // do_error_trap(..., SIGFPE, FPE_INTDIV)
        Debug => SIGTRAP,                   // single step / breakpoint registers
        Breakpoint => SIGTRAP,              // int3
        Overflow => SIGSEGV,                // into (invalid in 64-bit mode: #UD first)
        BoundRange => SIGSEGV,              // bound (invalid in 64-bit mode)
        InvalidOpcode => SIGILL,            // ILL_ILLOPN
        DeviceNotAvailable => SIGSEGV,      // cannot happen (CR0.TS/EM clear); Linux die()s with SIGSEGV
        CoprocessorOverrun => SIGFPE,
        InvalidTss => SIGSEGV,
        SegmentNotPresent => SIGBUS,        // Linux: do_error_trap(..., "segment not present", SIGBUS)
        StackFault => SIGBUS,               // Linux: do_error_trap(..., "stack segment", SIGBUS), e.g. non-canonical rsp
        GeneralProtection => SIGSEGV,
        PageFault => SIGSEGV,
        X87Error => SIGFPE,
        AlignmentCheck => SIGBUS,           // BUS_ADRALN
        SimdError => SIGFPE,
        ControlProtection => SIGSEGV,
        _ => 0,                             // NMI, #DF, #MC, #VE, reserved
    };

    /// <summary>si_addr as Linux reports it: CR2 for #PF, the faulting rip for #DE/#UD/#DB/#MF/#XM, 0 otherwise.</summary>
    public static ulong FaultAddress(int vector, ulong rip, ulong cr2) => vector switch
    {
        PageFault => cr2,
        DivideError or InvalidOpcode or Debug or X87Error or SimdError => rip,
        _ => 0,
    };

    /// <summary>
    /// si_code as Linux gives it: SEGV_MAPERR/SEGV_ACCERR for #PF (by the present bit of the error code),
    /// FPE_INTDIV for #DE, ILL_ILLOPN for #UD, TRAP_TRACE for #DB, BUS_ADRALN for #AC, FPE_FLTINV for #MF/#XM, and
    /// SI_KERNEL for what Linux raises with force_sig (#GP, #SS, #NP, int3...).
    /// </summary>
    public static int Code(int vector, ulong error) => vector switch
    {
        PageFault => (error & 1) != 0 ? 2 : 1,
        DivideError => 1,
        InvalidOpcode => 2,
        Debug => 2,
        AlignmentCheck => 1,
        X87Error or SimdError => 7,
        _ => 0x80,
    };

    public static string Name(int vector) => vector switch
    {
        0 => "#DE", 1 => "#DB", 2 => "NMI", 3 => "#BP", 4 => "#OF", 5 => "#BR", 6 => "#UD", 7 => "#NM",
        8 => "#DF", 9 => "coprocessor segment overrun", 10 => "#TS", 11 => "#NP", 12 => "#SS", 13 => "#GP",
        14 => "#PF", 16 => "#MF", 17 => "#AC", 18 => "#MC", 19 => "#XM", 20 => "#VE", 21 => "#CP",
        _ => $"reserved vector {vector}",
    };
}
