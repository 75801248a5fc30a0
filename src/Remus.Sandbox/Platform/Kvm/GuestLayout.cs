namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// Where the KVM platform keeps its ring-0 machinery: everything lives in the first 2 MiB of guest RAM
/// (<see cref="GuestMemory.UserBase"/>), which the page tables map supervisor-only except the three pages the syscall
/// path touches (data page, stub page read-only, syscall stack: <see cref="PageTables"/>), so the program can neither
/// read nor change the rest. Guest virtual = guest physical everywhere. The content is a pure function of the RAM size (no
/// host-dependent bytes), so a checkpoint taken on one host restores on another.
/// <code>
///   0x000000  (unused: keeps guest address 0 supervisor-only, so a null dereference faults)
///   0x001000  GDT: null, kernel code 0x08, kernel data 0x10, user data 0x18 (|3), user code 0x20 (|3), TSS 0x28 (16 bytes)
///   0x001800  TSS (104 bytes): RSP0, IST1 (faults), IST2 (#DF); then an I/O bitmap allowing port 0x20 only
///   0x002000  IDT: 32 interrupt gates (vectors 0-31), 16 bytes each
///   0x003000  vCPU 0's data: the user rsp saved by the syscall stub; FS/GS base saved by the FSGSBASE stub (user RW)
///   0x004000  syscall stub (LSTAR on hosts without FSGSBASE); its iretq is the single resume point (page user RO)
///   0x004100  syscall stub that also saves FS/GS base with rdfsbase/rdgsbase (LSTAR when CR4.FSGSBASE is on)
///   0x004800  exception stubs, 16 bytes per vector 0-31
///   0x005000  resume frames (user RO): 64 bytes per vCPU, the iretq frame the VMM writes before returning to ring 3
///   0x006000  syscall kernel stack (top 0x7000; the stub's own frame sits at 0x6fd8) (user RW)
///   0x008000  IST1 stack for exceptions (top 0x9000; the exception frame sits at 0x8fd8, error code at 0x8fd0)
///   0x00a000  IST2 stack for #DF (top 0xb000)
///   0x00c000  RSP0 stack (top 0xd000; no gate uses it, every gate has an IST)
///   0x010000  PML4
///   0x011000  PDPT
///   0x012000  page table of the first 2 MiB (4 KiB pages)
///   0x013000  second PML4, a copy of the first: switching CR3 between them makes KVM flush the vCPU's TLB
///   0x014000  syscall stubs of vCPUs 1-63 (user RO): 128 bytes each, plain stub at +0, FSGSBASE stub at +0x40
///   0x016000  data and syscall stack of vCPUs 1-63 (user RW): 128 bytes each, saved rsp/FS/GS at +0, stack top +0x80
///   0x018000  GDT, TSS and IST stacks of vCPUs 1-63: 512 bytes each, GDT +0, TSS +0x40, IST2 top +0x140, IST1 top +0x200
///   0x020000  pool of page tables for 2 MiB user pages split to enforce page permissions (PagePermissions)
///   0x100000  page directories, one per GiB of RAM (up to 256: 256 GiB)
/// </code>
/// Everything above 0x1000 up to 0xd000 is vCPU 0's, except the IDT, the exception stubs and the other vCPUs' resume
/// frames, which are shared or their own; <see cref="Cpu"/> says where each vCPU's part is. The limit of
/// <see cref="MaxVcpus"/> vCPUs (64) is the size of those areas: 13 pages, taken from the page-table pool.
/// The per-vCPU resume frame is read-only for the program: another thread of it cannot rewrite the frame a vCPU is
/// about to iretq through (on stock KVM that iretq runs at CPL 0, and a frame with a kernel CS would enter ring 0).
/// </summary>
internal static class GuestLayout
{
    /// <summary>Bytes reserved for the platform at the bottom of guest RAM.</summary>
    public const ulong ReservedSize = GuestMemory.UserBase;

    public const ulong Gdt = 0x1000;
    public const int GdtEntries = 7; // null, kcode, kdata, udata, ucode, TSS (two slots)
    public const ushort GdtLimit = GdtEntries * 8 - 1;

    public const ulong Tss = 0x1800;
    /// <summary>Bytes of the 64-bit TSS proper; the I/O permission bitmap follows it.</summary>
    public const int TssSize = 104;
    /// <summary>Bytes of the I/O permission bitmap: ports 0-63 (port 0x20 in byte 4), every bit set but port 0x20's.</summary>
    public const int IoBitmapSize = 8;
    /// <summary>TSS limit: the TSS, the bitmap and its 0xff terminator byte (0x70). Ports past the limit are denied.</summary>
    public const uint TssLimit = TssSize + IoBitmapSize; // last valid byte: the terminator

    public const ulong Idt = 0x2000;
    public const int IdtVectors = 32;
    public const ushort IdtLimit = IdtVectors * 16 - 1;

    public const ulong DataPage = 0x3000;
    /// <summary>Where the syscall stub saves the user rsp (never on the user stack: its red zone is live).</summary>
    public const ulong UserRspSave = DataPage + 0x00;
    /// <summary>Where the FSGSBASE syscall stub saves FS base.</summary>
    public const ulong FsBaseSave = DataPage + 0x08;
    /// <summary>Where the FSGSBASE syscall stub saves GS base.</summary>
    public const ulong GsBaseSave = DataPage + 0x10;

    public const ulong SyscallStub = 0x4000;
    public const ulong SyscallStubFsgs = 0x4100;
    public const ulong ExceptionStubs = 0x4800;
    public const int ExceptionStubSize = 16;

    public const ulong SyscallStackTop = 0x7000;
    public const ulong Ist1Top = 0x9000;
    public const ulong Ist2Top = 0xb000;
    public const ulong Rsp0Top = 0xd000;

    /// <summary>The resume frames, one 64-byte slot per vCPU (user read-only): the 5-qword iretq frame (rip, cs, rflags,
    /// rsp, ss) every resume from ring 0 writes from <see cref="UserRegs"/> and pops with the iretq at
    /// <see cref="Stubs.ResumeAddress"/>. (The syscall stub still builds its own frame on its stack, which nothing
    /// uses.)</summary>
    public const ulong ResumeFrames = 0x5000;
    public const int ResumeFrameSlot = 64;

    /// <summary>vCPU 0's resume frame.</summary>
    public const ulong ResumeFrame = ResumeFrames;

    /// <summary>The 5-qword frame the CPU pushes on IST1 when a user exception arrives (the error code, if the
    /// vector has one, sits just below it).</summary>
    public const ulong Ist1Frame = Ist1Top - 5 * 8;
    public const ulong Ist2Frame = Ist2Top - 5 * 8;

    public const ulong Pml4 = 0x10000;
    public const ulong Pdpt = 0x11000;
    public const ulong LowPageTable = 0x12000;
    public const ulong Pml4Alternate = 0x13000;
    /// <summary>How many vCPUs one VM can run (the size of the per-vCPU areas below).</summary>
    public const int MaxVcpus = 64;

    /// <summary>Syscall stubs of vCPUs 1.. (user RO), <see cref="SiblingStubSize"/> bytes each, at index * size.</summary>
    public const ulong SiblingStubs = 0x14000;
    public const int SiblingStubSize = 128;
    /// <summary>Offset of the FSGSBASE stub in a sibling's stub slot.</summary>
    public const int SiblingFsgsStubOffset = 0x40;
    /// <summary>Data slots and syscall stacks of vCPUs 1.. (user RW), <see cref="SiblingUserSize"/> bytes each.</summary>
    public const ulong SiblingUser = SiblingStubs + MaxVcpus * SiblingStubSize;          // 0x16000
    public const int SiblingUserSize = 128;
    /// <summary>GDT, TSS and IST stacks of vCPUs 1.. (supervisor), <see cref="SiblingSystemSize"/> bytes each.</summary>
    public const ulong SiblingSystem = SiblingUser + MaxVcpus * SiblingUserSize;         // 0x18000
    public const int SiblingSystemSize = 512;
    private const int SiblingTssOffset = 0x40, SiblingIst2Top = 0x140, SiblingIst1Top = 0x200;

    public const ulong PageTablePool = SiblingSystem + MaxVcpus * SiblingSystemSize;     // 0x20000
    public const int PageTablePoolPages = (int)((PageDirectories - PageTablePool) / 4096); // 224: 448 MiB of RAM
    public const ulong PageDirectories = 0x100000;
    public const int MaxPageDirectories = (int)((ReservedSize - PageDirectories) / 4096); // 256

    /// <summary>The largest RAM the page tables can map (one 4 KiB page directory per GiB).</summary>
    public const ulong MaxMemory = (ulong)MaxPageDirectories << 30;

    // Selectors (GDT index * 8 | RPL). syscall loads CS = STAR[47:32], SS = STAR[47:32] + 8; a 64-bit sysret would
    // load CS = STAR[63:48] + 16, SS = STAR[63:48] + 8, which is why user data precedes user code.
    public const ushort KernelCode = 0x08;
    public const ushort KernelData = 0x10;
    public const ushort UserData = 0x18 | 3;
    public const ushort UserCode = 0x20 | 3;
    public const ushort TssSelector = 0x28;

    /// <summary>The syscall stub exits with <c>out 0x20, al</c> (the port of ring3-probe.c).</summary>
    public const ushort SyscallPort = 0x20;
    /// <summary>Exception stub n exits with <c>out 0x40+n, al</c>: the vector is the port, so no register is clobbered.
    /// (Port 0x7e is avoided on purpose: KVM treats "out 0x7e" specially.)</summary>
    public const ushort ExceptionPortBase = 0x40;

    /// <summary>Guest-physical range KVM_SET_TSS_ADDR reserves (Intel without unrestricted guest only); it must not
    /// overlap RAM, so it is set only when RAM ends below it.</summary>
    public const ulong KvmTssAddress = 0xfffbd000;

    // MSRs
    public const uint MsrStar = 0xc0000081;
    public const uint MsrLstar = 0xc0000082;
    public const uint MsrCstar = 0xc0000083;
    public const uint MsrSyscallMask = 0xc0000084;

    /// <summary>STAR: syscall CS 0x08 / SS 0x10; sysret base 0x10 (CS 0x23, SS 0x1b), as in ring3-probe.c.</summary>
    public const ulong Star = (0x10UL << 48) | (0x08UL << 32);

    // RFLAGS bits
    public const ulong FlagCf = 1 << 0, FlagFixed = 1 << 1, FlagPf = 1 << 2, FlagAf = 1 << 4, FlagZf = 1 << 6,
        FlagSf = 1 << 7, FlagTf = 1 << 8, FlagIf = 1 << 9, FlagDf = 1 << 10, FlagOf = 1 << 11, FlagIopl = 3 << 12,
        FlagNt = 1 << 14, FlagRf = 1 << 16, FlagAc = 1 << 18, FlagId = 1 << 21;

    /// <summary>SFMASK: what syscall clears on entry to the stub: TF (no single-step trap in ring 0), IF, DF, IOPL,
    /// NT (iretq with NT set would #GP in long mode) and AC.</summary>
    public const ulong SyscallMask = FlagTf | FlagIf | FlagDf | FlagIopl | FlagNt | FlagAc;

    /// <summary>The flags a user context may carry into ring 3 (Linux's ptrace FLAG_MASK plus ID): never IOPL, VM,
    /// VIF or VIP; IF and the fixed bit are always set.</summary>
    public const ulong UserFlagMask = FlagCf | FlagPf | FlagAf | FlagZf | FlagSf | FlagTf | FlagDf | FlagOf | FlagNt |
        FlagRf | FlagAc | FlagId;

    /// <summary>RFLAGS of the vCPU while it sits in a ring-0 stub waiting to iretq (interrupts off).</summary>
    public const ulong KernelFlags = FlagFixed;

    // Control registers and EFER
    public const ulong Cr0Pe = 1UL << 0, Cr0Mp = 1UL << 1, Cr0Et = 1UL << 4, Cr0Ne = 1UL << 5, Cr0Wp = 1UL << 16,
        Cr0Am = 1UL << 18, Cr0Pg = 1UL << 31;

    /// <summary>CR0 as Linux runs user code: the probe's PG|NE|ET|MP|PE plus WP (harmless: nothing is read-only)
    /// and AM, so a program that sets EFLAGS.AC gets #AC (SIGBUS) as on Linux.</summary>
    public const ulong Cr0 = Cr0Pe | Cr0Mp | Cr0Et | Cr0Ne | Cr0Wp | Cr0Am | Cr0Pg;

    public const ulong Cr4Pae = 1UL << 5, Cr4Osfxsr = 1UL << 9, Cr4Osxmmexcpt = 1UL << 10, Cr4Fsgsbase = 1UL << 16,
        Cr4Osxsave = 1UL << 18;

    public const ulong EferSce = 1UL << 0, EferLme = 1UL << 8, EferLma = 1UL << 10, EferNxe = 1UL << 11;
    /// <summary>EFER: SYSCALL, long mode, and NXE so the program's page-table entries can forbid instruction fetches
    /// (bit 63, XD) from pages without PROT_EXEC, as on Linux. The platform's own entries never set it.</summary>
    public const ulong Efer = EferSce | EferLme | EferLma | EferNxe;

    /// <summary>
    /// Writes the whole reserved area for <paramref name="memorySize"/> bytes of RAM into <paramref name="reserved"/>
    /// (guest-physical bytes 0..<see cref="ReservedSize"/>): everything is cleared, then page tables, GDT, TSS, IDT
    /// and stubs are written. Deterministic: the same RAM size always gives the same bytes.
    /// </summary>
    public static void Build(Span<byte> reserved, ulong memorySize)
    {
        if ((ulong)reserved.Length < ReservedSize) throw new ArgumentException("the reserved area is too small", nameof(reserved));
        reserved[..(int)ReservedSize].Clear();
        PageTables.Write(reserved, memorySize);
        Descriptors.Write(reserved);
        Stubs.Write(reserved);
    }

    /// <summary>vCPU 0's area: the addresses above (the layout of the single-vCPU platform, unchanged).</summary>
    public static readonly CpuArea Cpu0 = new(0, Gdt, Tss, UserRspSave, SyscallStackTop, Ist1Top, Ist2Top, Rsp0Top,
        SyscallStub, SyscallStubFsgs, ResumeFrame);

    /// <summary>Where vCPU <paramref name="index"/> (0..<see cref="MaxVcpus"/>-1) keeps its GDT, TSS, stacks, data
    /// slots, syscall stub and resume frame. vCPU 0 has the single-vCPU layout; the others have compact slots in the
    /// sibling areas (see the class summary).</summary>
    public static CpuArea Cpu(int index)
    {
        if ((uint)index >= MaxVcpus) throw new ArgumentOutOfRangeException(nameof(index), index, $"a vCPU index below {MaxVcpus}");
        if (index == 0) return Cpu0;
        ulong i = (ulong)index;
        ulong stub = SiblingStubs + i * SiblingStubSize;
        ulong user = SiblingUser + i * SiblingUserSize;
        ulong system = SiblingSystem + i * SiblingSystemSize;
        return new CpuArea(index, Gdt: system, Tss: system + SiblingTssOffset, UserRspSave: user,
            SyscallStackTop: user + SiblingUserSize, Ist1Top: system + SiblingIst1Top, Ist2Top: system + SiblingIst2Top,
            Rsp0Top: system + SiblingIst1Top, SyscallStub: stub, SyscallStubFsgs: stub + SiblingFsgsStubOffset,
            ResumeFrame: ResumeFrames + i * ResumeFrameSlot);
    }

    /// <summary>How the program may reach the 4 KiB page at <paramref name="page"/> of the reserved area: 1 read-only
    /// (stubs, resume frames), 2 read/write (data slots, syscall stacks), 0 not at all. What the syscall path needs
    /// on kvm_pvm, where it runs at CPL 3 (<see cref="PageTables"/>).</summary>
    public static int UserAccess(ulong page) => (page & ~0xfffUL) switch
    {
        DataPage or SyscallStackTop - 0x1000 => 2,
        SyscallStub or ResumeFrames => 1,
        var p when p >= SiblingStubs && p < SiblingUser => 1,
        var p when p >= SiblingUser && p < SiblingSystem => 2,
        _ => 0,
    };

    /// <summary>True when <paramref name="address"/> is canonical for 4-level paging (48 bits, sign-extended).</summary>
    public static bool IsCanonical(ulong address) => (ulong)((long)(address << 16) >> 16) == address;
}
