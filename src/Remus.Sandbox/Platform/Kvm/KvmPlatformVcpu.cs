using System.Runtime.InteropServices;
using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The KVM platform (DESIGN.md §2-§3): the program runs in ring 3 of a micro-VM whose only ring-0 code is a handful of
/// stubs in the first 2 MiB (<see cref="GuestLayout"/>). <c>syscall</c> enters the stub at LSTAR,
/// which saves the user rsp, switches to a kernel stack, builds an iretq frame and exits with <c>out 0x20</c>;
/// exceptions enter per-vector stubs on IST1 that exit with <c>out 0x40+vector</c>.
/// <para>
/// <b>Two kinds of KVM</b> (issue 7). On stock KVM (VMX/SVM) the syscall stub runs at CPL 0 and an <c>out</c> exit
/// reports rip at the <c>out</c>; on kvm_pvm (nested, paravirtual) <c>syscall</c> stays at CPL 3, so the stub's
/// pages are user pages (<see cref="PageTables"/>), its <c>out</c> is allowed by the TSS I/O bitmap
/// (<see cref="Descriptors.WriteTss"/>), and the exit reports rip after the <c>out</c>. Both rips, and only those,
/// make a port-0x20 exit a syscall (<see cref="SyscallExits"/>); "ring 0" below means "inside a stub" on either.
/// The dirty log is KVM's (<see cref="KvmSlotDirtyLog"/>); an unexpected exit, a fault in the stubs or a shutdown
/// produces one diagnostic block (<see cref="KvmDiagnostics"/>).
/// </para>
/// <para>
/// <b>The resume rule.</b> Whenever the vCPU stops in ring 0 (after a syscall or an exception exit, or before the
/// first run), the next <see cref="Run"/> returns to the program the same way: it writes the iretq frame at
/// <see cref="GuestLayout.ResumeFrame"/> from <see cref="Regs"/> (rip, user cs, sanitized rflags, rsp, user ss), loads
/// the general registers from <see cref="Regs"/> with rip = <see cref="Stubs.ResumeAddress"/> (the stub's iretq) and
/// rsp = the frame, and enters. So every change the kernel layer makes to <see cref="Regs"/> (rax, rip -= 2 for a
/// restart, rsp, FS base...) takes effect, and KVM's half-finished <c>out</c> is simply abandoned: KVM completes a
/// port write by skipping the instruction only while rip still points at it (complete_fast_pio_out).
/// </para>
/// <para>
/// <b>What a syscall costs: one ioctl.</b> KVM_CAP_SYNC_REGS makes KVM copy struct kvm_regs into kvm_run on every exit
/// (kvm_valid_regs) and load it from there on the next entry (kvm_dirty_regs), so the exit is read and the resume
/// written without KVM_GET_REGS/KVM_SET_REGS. The user rsp (and, with CR4.FSGSBASE, FS/GS base saved by the stub
/// with rdfsbase/rdgsbase) come from guest memory. Per syscall: KVM_RUN, nothing else. Extra ioctls happen only when
/// FS/GS base changed (arch_prctl: KVM_GET_SREGS + KVM_SET_SREGS), on an exception exit (KVM_GET_SREGS for CR2 and
/// the segment bases) and on a kick that stops the program in ring 3 (KVM_GET_SREGS).
/// </para>
/// <para>
/// <b>Several vCPUs</b> (one per guest thread) share one VM (<see cref="KvmMachine"/>): its RAM, page tables, dirty
/// log and platform area. Each has its own area in that (<see cref="CpuArea"/>: GDT, TSS with its own IST stacks,
/// syscall stub with its own data slot and stack, resume frame), its own LSTAR naming its stub, its own kick, FS/GS base,
/// extended state and CPU time. A sibling is made with <see cref="PrepareSibling"/> on this vCPU's thread and
/// <see cref="IVcpuSeed.Attach"/> on the new one.
/// </para>
/// <para>Everything but <see cref="Kick"/> must run on the thread that constructed (or attached) the vCPU.</para>
/// </summary>
internal sealed unsafe class KvmPlatformVcpu : IVcpu
{
    /// <summary>The single memory slot: all of guest RAM at guest-physical 0 (KVM_MEM_LOG_DIRTY_PAGES once the dirty
    /// log starts).</summary>
    public const uint MemorySlot = KvmMachine.MemorySlot;

    private readonly KvmMachine _machine;
    /// <summary>This vCPU's part of the platform area.</summary>
    private readonly CpuArea _cpu;
    private readonly byte* _ram;
    private readonly KvmVcpu _vcpu;
    private readonly VcpuKicker _kicker;
    private readonly KvmRun* _run;
    private readonly KvmRegs* _sync;
    private readonly int _ownerThread;
    private readonly KvmSlotDirtyLog _dirtyLog;
    private Action<string>? _log;
    /// <summary>The <see cref="TlbFlush.Generation"/> this vCPU's TLB has been flushed for.</summary>
    private long _flushSeen;

    /// <summary>Whether the program's rdtsc reads the host's TSC (offset 0); see the constructor.</summary>
    private readonly bool _tscFromHost;
    private readonly PagePermissions _permissions;

    private UserRegs _regs;
    /// <summary>What <see cref="_regs"/> held when Run last returned (to see whether the kernel layer changed it).</summary>
    private UserRegs _presented;
    /// <summary>True while the vCPU sits in ring 0 (in a stub, at its out or at the resume iretq).</summary>
    private bool _inKernel = true;
    /// <summary>Load <see cref="_regs"/> into the vCPU on the next run even in ring 3 (after a restore).</summary>
    private bool _forceLoad;
    /// <summary>A kick was consumed while the vCPU finished a stub: the next Run returns Kicked at once.</summary>
    private bool _deferredKick;
    /// <summary>LSTAR is the FSGSBASE stub, which saves FS/GS base in the data page.</summary>
    private bool _fsgsStub;
    /// <summary>KVM's CPUID offers XSAVE, so CR4.OSXSAVE and XCR0 are ours (KVM_SET_XCRS).</summary>
    private readonly bool _xsaveEnabled;
    /// <summary>The vCPU's FS/GS base as last known.</summary>
    private ulong _fsBase, _gsBase;
    private bool _disposed;
    /// <summary>How this KVM reported the last stub <c>out</c> (at it: stock KVM; after it: kvm_pvm); null before.</summary>
    private SyscallPortExit? _convention;

    public ref UserRegs Regs => ref _regs;

    /// <summary>Which per-vCPU area (0..<see cref="MaxVcpus"/>-1) this vCPU runs with.</summary>
    internal int CpuIndex => _cpu.Index;

    /// <summary>How many vCPUs this VM can run at once (<see cref="GuestLayout.MaxVcpus"/>, or KVM's own limit if lower).</summary>
    public int MaxVcpus => _machine.MaxVcpus;

    /// <summary>How KVM reported the rip of the last syscall exit (null before the first).</summary>
    internal SyscallPortExit? SyscallConvention => _convention;

    /// <summary>The dirty log's mode (valid before it starts).</summary>
    internal KvmDirtyLogMode DirtyLogMode => _dirtyLog.Mode;

    string IVcpu.DirtyLogMode => _dirtyLog.Mode == KvmDirtyLogMode.ManualProtect
        ? "KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protect)"
        : "KVM_GET_DIRTY_LOG";

    public void SetLog(Action<string>? log)
    {
        _log = log;
        if (!_tscFromHost) log?.Invoke("kvm: no TSC offset control here; rdtsc reads the vCPU's own TSC, which starts again at 0 after a restore");
        _permissions.Log = log;
    }

    /// <summary>Paged: a flush before the next run (stock KVM); kvm_pvm keeps its cached walks (see <see cref="KvmPagedMode"/>).</summary>
    public void TranslationChanged(ulong start, ulong length)
    {
        long before = _machine.Tlb.Generation;
        _machine.Paged.TranslationChanged(_machine.Tlb);
        if (_machine.Tlb.Generation != before) _machine.Shootdown(this);
    }

    public bool KeepsPageTables => _machine.Paged.KeepsPageTables(_machine.Tlb);

    /// <summary>Paged on a shadow MMU: the frames' translations are zapped before any vCPU of the VM runs again, the
    /// running siblings kicked and waited for (<see cref="KvmMachine.Shootdown"/>).</summary>
    public void RetireFrames(ulong firstFrame, ulong count)
    {
        if (count == 0) return;
        _machine.Tlb.Retire(firstFrame * GuestMemory.PageSize, count * GuestMemory.PageSize);
        _machine.Shootdown(this);
    }

    /// <summary>Enforces the program's permissions in the identity map (see <see cref="PagePermissions"/>).</summary>
    public void ProtectRange(ulong start, ulong length, int prot)
    {
        long before = _machine.Tlb.Generation;
        _permissions.Protect(start, length, prot);
        // A right taken away: every vCPU's TLB, this one's before it runs again, the running siblings' now.
        if (_machine.Tlb.Generation != before) _machine.Shootdown(this);
    }

    /// <summary>How the VM's vCPUs drop translations the VMM took away (<see cref="TlbFlush"/>; tests, benchmarks).</summary>
    internal TlbFlush Tlb => _machine.Tlb;

    /// <summary>The flush this vCPU owes (<see cref="TlbFlush.BeforeRun"/>): a CR3/CR4 reset of its own MMU, or the VM's
    /// zap or slot re-add if no sibling did it yet.</summary>
    private void FlushIfNeeded() => _machine.Tlb.BeforeRun(_vcpu, ref _flushSeen);

    /// <summary>The VM, for the checkpoint engine (dirty log of <see cref="MemorySlot"/>).</summary>
    internal KvmVm Vm => _machine.Vm;

    /// <summary>Builds the micro-VM over <paramref name="memory"/> (writing the reserved first 2 MiB) and its vCPU, on
    /// the calling thread, which becomes the vCPU thread.</summary>
    /// <exception cref="SandboxException">KVM is missing, lacks something, or refused the configuration.</exception>
    public KvmPlatformVcpu(GuestMemory memory) : this(memory, null)
    {
    }

    /// <summary>As <see cref="KvmPlatformVcpu(GuestMemory)"/>; <paramref name="paged"/>: CR3 is the program's page
    /// tables (<see cref="KvmPagedMode"/>), else the platform's identity map.</summary>
    public KvmPlatformVcpu(GuestMemory memory, bool paged) : this(memory, null, paged)
    {
    }

    /// <summary>As <see cref="KvmPlatformVcpu(GuestMemory)"/>, with the dirty-log mode given (tests, benchmarks) instead
    /// of the default.</summary>
    internal KvmPlatformVcpu(GuestMemory memory, KvmDirtyLogMode? dirtyLogMode, bool paged = false)
        : this(KvmMachine.Create(memory, dirtyLogMode ?? KvmSlotDirtyLog.RequestedMode(), paged), 0, null)
    {
    }

    /// <summary>vCPU <paramref name="index"/> of <paramref name="machine"/> (whose area the caller reserved and which
    /// this vCPU releases, also when it fails), on the calling thread, which becomes the vCPU thread; from
    /// <paramref name="seed"/>'s state when it is a sibling.</summary>
    private KvmPlatformVcpu(KvmMachine machine, int index, Seed? seed)
    {
        _machine = machine;
        _cpu = GuestLayout.Cpu(index);
        _permissions = machine.Permissions;
        _dirtyLog = machine.DirtyLog;
        _ram = (byte*)machine.Memory.HostBase;
        _ownerThread = Environment.CurrentManagedThreadId;
        _flushSeen = machine.Tlb.Generation; // a new vCPU's TLB is empty
        CpuConfig config = machine.Config;

        KvmVcpu? vcpu = null;
        VcpuKicker? kicker = null;
        try
        {
            // The order of ring3-probe.c: memory (the machine's), TSS address, vCPU, CPUID, sregs, XCR0, MSRs, regs.
            // CPUID comes before sregs and XCRS because KVM checks CR4.OSXSAVE/FSGSBASE and XCR0 against the guest's CPUID.
            vcpu = machine.TakeVcpu(out bool fresh);
            if (fresh)
            {
                vcpu.SetCpuid2(machine.Cpuid);
                // rdtsc reads the host's TSC, as on ptrace and natively: a vCPU's own TSC would start again at 0 on
                // each restore (checkpoints do not carry it), so a program's rdtsc would run backwards across one.
                // Where KVM has no TSC offset control (before Linux 5.16, or a KVM without it) the vCPU keeps its own TSC.
                bool tsc = vcpu.TrySetTscOffset(0, out _);
                if (index == 0) machine.TscFromHost = tsc;
            }
            _tscFromHost = machine.TscFromHost;
            vcpu.ImmediateExit = false; // a kick that reached a parked vCPU is not this one's
            KvmSregs initial = config.InitialSregs(vcpu.GetSregs(), _cpu);
            if (seed != null)
            {
                initial.Fs.Base = seed.Regs.FsBase;
                initial.Gs.Base = seed.Regs.GsBase;
            }
            vcpu.SetSregs(machine.Paged.Apply(initial));
            if (config.Xsave) vcpu.SetXcrs(KvmXcrs.WithXcr0(config.Xcr0));
            KvmMsrEntry[] msrs = CpuConfig.SyscallMsrs(config.Fsgsbase, _cpu);
            int written = vcpu.SetMsrs(msrs);
            if (written != msrs.Length)
                throw new SandboxException($"cannot use KVM: it refused MSR 0x{msrs[written].Index:x} = 0x{msrs[written].Data:x}");
            if (seed != null) vcpu.SetXsave(seed.Xsave); // the same VM and CPUID: KVM's own area as it is
            // The vCPU starts at the resume iretq in ring 0; the first Run enters the program like any syscall return.
            var regs = new KvmRegs { Rip = Stubs.ResumeAddress, Rsp = _cpu.ResumeFrame, Rflags = GuestLayout.KernelFlags };
            vcpu.SetRegs(regs);
            KvmSregs actual = vcpu.GetSregs();

            _run = (KvmRun*)vcpu.RunAddress;
            _sync = (KvmRegs*)_run->S; // kvm_run.s.regs.regs: offset 0 of the sync area
            *_sync = regs;
            _run->KvmDirtyRegs = 0;
            _run->KvmValidRegs = KvmPlatform.KVM_SYNC_X86_REGS;

            kicker = new VcpuKicker(vcpu);
            kicker.AttachCurrentThread();

            _fsgsStub = config.Fsgsbase;
            _xsaveEnabled = config.Xsave;
            _xcr0 = config.Xsave ? config.Xcr0 : 0; // 0: as KVM's XSAVE area reports it (XstateFeatures)
            _fsBase = actual.Fs.Base;
            _gsBase = actual.Gs.Base;
            _vcpu = vcpu;
            _kicker = kicker;
            machine.Attach(this); // from here a sibling's shootdown may kick it
        }
        catch (Exception e)
        {
            kicker?.Dispose();
            vcpu?.Dispose(); // not parked: its state is unknown
            machine.Release(index, null);
            if (e is KvmException k) throw new SandboxException($"cannot start the KVM vCPU: {k.Message}", k);
            throw;
        }

        if (seed != null)
        {
            _regs = seed.Regs;
            _regs.FsBase = _fsBase;
            _regs.GsBase = _gsBase;
            _presented = _regs;
            return;
        }
        // The program's view before its first instruction (SandboxDomain fills in rip, rsp and rflags).
        _regs = default;
        _regs.Cs = GuestLayout.UserCode;
        _regs.Ss = GuestLayout.UserData;
        _regs.Ds = _regs.Es = _regs.Fs = _regs.Gs = GuestLayout.UserData;
        _regs.Eflags = GuestLayout.FlagIf | GuestLayout.FlagFixed;
        _regs.OrigRax = ulong.MaxValue;
        _regs.FsBase = _fsBase;
        _regs.GsBase = _gsBase;
        _presented = _regs;
    }

    // ---- siblings ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Reserves a per-vCPU area of this VM and captures this vCPU's registers (<see cref="Regs"/> with FS/GS base) and
    /// XSAVE area for a new guest thread's vCPU, which <see cref="IVcpuSeed.Attach"/> then makes on its own thread.
    /// On this vCPU's thread while it is not running.
    /// </summary>
    /// <exception cref="SandboxException">all <see cref="MaxVcpus"/> areas are in use, or KVM failed.</exception>
    public IVcpuSeed PrepareSibling()
    {
        CheckOwner();
        byte[] xsave = Checked(() => _vcpu.GetXsave(), "KVM_GET_XSAVE");
        int index = _machine.Reserve();
        if (index < 0) throw new SandboxException($"the KVM platform runs at most {_machine.MaxVcpus} vCPUs per domain, and all are in use");
        return new Seed(_machine, index, _regs, xsave);
    }

    /// <summary>A reserved area and the state a sibling starts from; attached once, or disposed to give the area back.</summary>
    private sealed class Seed(KvmMachine machine, int index, UserRegs regs, byte[] xsave) : IVcpuSeed
    {
        private int _used; // 1 once attached or disposed

        public UserRegs Regs { get; } = regs;
        public byte[] Xsave { get; } = xsave;

        public IVcpu Attach()
        {
            if (Interlocked.Exchange(ref _used, 1) != 0)
                throw new InvalidOperationException("a vCPU seed is attached once, and not after it was disposed");
            return new KvmPlatformVcpu(machine, index, this);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _used, 1) == 0) machine.Release(index, null);
        }
    }

    // ---- running ---------------------------------------------------------------------------------------------

    public VcpuExit Run()
    {
        CheckOwner();
        if (_deferredKick)
        {
            _deferredKick = false;
            return VcpuExit.KickedExit;
        }
        // iretq (or VM entry) would refuse these; Linux kills the task with SIGSEGV when its return context is bad.
        if (!GuestLayout.IsCanonical(_regs.Rip) || !GuestLayout.IsCanonical(_regs.FsBase) || !GuestLayout.IsCanonical(_regs.GsBase))
            return new VcpuExit(VcpuExitKind.Fault, ExceptionMap.SIGSEGV, 0, 0x80, ExceptionMap.GeneralProtection);

        LoadRegs();
        while (true)
        {
            KvmExit exit;
            try
            {
                exit = EnterGuest();
            }
            catch (KvmException e)
            {
                throw new SandboxException($"the KVM vCPU failed: {e.Message}", e);
            }

            switch (exit.Reason)
            {
                case KvmExitReason.Io when exit.IoDirection == KvmIoDirection.Out && exit.IoPort == GuestLayout.SyscallPort:
                    var kind = SyscallExits.Classify(_sync->Rip, _fsgsStub, _cpu);
                    if (kind == SyscallPortExit.Stray) return PresentStrayPort();
                    _convention = kind;
                    PresentSyscall();
                    return VcpuExit.SyscallExit;

                case KvmExitReason.Io when exit.IoDirection == KvmIoDirection.Out
                                           && exit.IoPort >= GuestLayout.ExceptionPortBase
                                           && exit.IoPort < GuestLayout.ExceptionPortBase + GuestLayout.IdtVectors:
                    return PresentException(exit.IoPort - GuestLayout.ExceptionPortBase);

                case KvmExitReason.Intr:
                    bool asked = Interlocked.Exchange(ref _kickAsked, 0) != 0;
                    // Not a Kick of ours (a sibling's TLB shootdown, or another signal): the program goes on, after
                    // the flush EnterGuest does.
                    if (Interrupted(asked) && asked) return VcpuExit.KickedExit;
                    continue; // stopped inside a stub: let it reach its out (a few instructions)

                default:
                    throw Unexpected(exit);
            }
        }
    }

    /// <summary>Puts <see cref="_regs"/> into the vCPU for the next KVM_RUN (see the resume rule above).</summary>
    private void LoadRegs()
    {
        ref KvmRegs k = ref *_sync;
        if (_inKernel)
        {
            ulong* frame = (ulong*)(_ram + _cpu.ResumeFrame);
            frame[0] = _regs.Rip;
            frame[1] = GuestLayout.UserCode;
            frame[2] = UserFlags(_regs.Eflags);
            frame[3] = _regs.Rsp;
            frame[4] = GuestLayout.UserData;
            CopyGprs(ref k);
            k.Rip = Stubs.ResumeAddress;
            k.Rsp = _cpu.ResumeFrame;
            k.Rflags = GuestLayout.KernelFlags;
            _run->KvmDirtyRegs = KvmPlatform.KVM_SYNC_X86_REGS;
        }
        else if (_forceLoad || !Same(in _regs, in _presented))
        {
            // Stopped in ring 3 by a kick and changed since: load directly (rip was checked canonical).
            CopyGprs(ref k);
            k.Rip = _regs.Rip;
            k.Rsp = _regs.Rsp;
            k.Rflags = UserFlags(_regs.Eflags);
            _run->KvmDirtyRegs = KvmPlatform.KVM_SYNC_X86_REGS;
        }
        _forceLoad = false;

        if (_regs.FsBase != _fsBase || _regs.GsBase != _gsBase)
        {
            // arch_prctl(ARCH_SET_FS/GS): rare, two ioctls.
            KvmSregs s = Checked(() => _vcpu.GetSregs(), "KVM_GET_SREGS");
            s.Fs.Base = _regs.FsBase;
            s.Gs.Base = _regs.GsBase;
            Checked(() => _vcpu.SetSregs(s), "KVM_SET_SREGS");
            _fsBase = _regs.FsBase;
            _gsBase = _regs.GsBase;
        }
    }

    private void CopyGprs(ref KvmRegs k)
    {
        k.Rax = _regs.Rax; k.Rbx = _regs.Rbx; k.Rcx = _regs.Rcx; k.Rdx = _regs.Rdx;
        k.Rsi = _regs.Rsi; k.Rdi = _regs.Rdi; k.Rbp = _regs.Rbp;
        k.R8 = _regs.R8; k.R9 = _regs.R9; k.R10 = _regs.R10; k.R11 = _regs.R11;
        k.R12 = _regs.R12; k.R13 = _regs.R13; k.R14 = _regs.R14; k.R15 = _regs.R15;
    }

    private void TakeGprs(in KvmRegs k)
    {
        _regs.Rax = k.Rax; _regs.Rbx = k.Rbx; _regs.Rcx = k.Rcx; _regs.Rdx = k.Rdx;
        _regs.Rsi = k.Rsi; _regs.Rdi = k.Rdi; _regs.Rbp = k.Rbp;
        _regs.R8 = k.R8; _regs.R9 = k.R9; _regs.R10 = k.R10; _regs.R11 = k.R11;
        _regs.R12 = k.R12; _regs.R13 = k.R13; _regs.R14 = k.R14; _regs.R15 = k.R15;
    }

    /// <summary>The fixed parts of the user view: selectors of our GDT and the known FS/GS base.</summary>
    private void TakeSegments()
    {
        _regs.Cs = GuestLayout.UserCode;
        _regs.Ss = GuestLayout.UserData;
        _regs.Ds = _regs.Es = _regs.Fs = _regs.Gs = GuestLayout.UserData;
        _regs.FsBase = _fsBase;
        _regs.GsBase = _gsBase;
    }

    /// <summary>The stub's out 0x20: rcx = user rip (after the syscall), r11 = user rflags, the user rsp in the data
    /// page; every other register is the program's (the stub touches only rsp).</summary>
    private void PresentSyscall()
    {
        ref readonly KvmRegs k = ref *_sync;
        TakeGprs(in k);
        _regs.OrigRax = k.Rax;
        _regs.Rip = k.Rcx;
        _regs.Eflags = k.R11;
        _regs.Rsp = ReadPhysical(_cpu.UserRspSave);
        if (_fsgsStub)
        {
            _fsBase = ReadPhysical(_cpu.FsBaseSave);
            _gsBase = ReadPhysical(_cpu.GsBaseSave);
        }
        TakeSegments();
        _inKernel = true;
        _presented = _regs;
    }

    /// <summary>
    /// Presents the registers of a vCPU stopped in the program's own code (not at a syscall): the general registers
    /// as KVM left them, FS/GS base from the sregs, no system call (orig_rax -1).
    /// </summary>
    private void PresentOwnCode(in KvmRegs k)
    {
        KvmSregs s = Checked(() => _vcpu.GetSregs(), "KVM_GET_SREGS");
        _fsBase = s.Fs.Base;
        _gsBase = s.Gs.Base;
        TakeGprs(in k);
        _regs.OrigRax = ulong.MaxValue;
        _regs.Rip = k.Rip;
        _regs.Rsp = k.Rsp;
        _regs.Eflags = k.Rflags;
        TakeSegments();
        _presented = _regs;
    }

    /// <summary>
    /// The program wrote port 0x20 from its own code (ring 3 may reach that one port, for the stub's sake). Linux
    /// answers a user <c>out</c> with #GP: SIGSEGV, si_addr 0. The registers are the program's; rip is as KVM reports
    /// it (at the <c>out</c> on stock KVM, after it on kvm_pvm). The program is killed, so the half-done <c>out</c> is
    /// never resumed.
    /// </summary>
    private VcpuExit PresentStrayPort()
    {
        ref readonly KvmRegs k = ref *_sync;
        PresentOwnCode(in k);
        _inKernel = k.Rip < GuestLayout.ReservedSize;
        return new VcpuExit(VcpuExitKind.Fault, ExceptionMap.SIGSEGV, 0, 0x80, ExceptionMap.GeneralProtection);
    }

    /// <summary>An exception stub's out 0x40+vector: the program's rip/rflags/rsp are in the CPU's frame on the IST
    /// stack, every general register is untouched.</summary>
    private VcpuExit PresentException(int vector)
    {
        ulong frame = vector == ExceptionMap.DoubleFault ? _cpu.Ist2Frame : _cpu.Ist1Frame;
        ulong rip = ReadPhysical(frame), cs = ReadPhysical(frame + 8), rflags = ReadPhysical(frame + 16);
        ulong rsp = ReadPhysical(frame + 24);
        ulong error = ExceptionMap.HasErrorCode(vector) ? ReadPhysical(frame - 8) : 0;
        KvmSregs s = Checked(() => _vcpu.GetSregs(), "KVM_GET_SREGS"); // CR2 and the bases: faults are rare
        _fsBase = s.Fs.Base;
        _gsBase = s.Gs.Base;
        _inKernel = true;
        var info = new ExceptionFrame(vector, error, rip, cs, rflags, rsp, ReadPhysical(frame + 32));

        // The one legitimate fault in the stubs: iretq refused the user context the kernel layer asked for (rip and
        // rsp are those of a resume, which leaves rsp at the frame). Regs still hold that context; Linux answers a
        // bad return frame with SIGSEGV.
        if (rip == Stubs.ResumeAddress && rsp == _cpu.ResumeFrame
            && vector is ExceptionMap.GeneralProtection or ExceptionMap.StackFault or ExceptionMap.SegmentNotPresent)
            return new VcpuExit(VcpuExitKind.Fault, ExceptionMap.SIGSEGV, 0, 0x80, ExceptionMap.GeneralProtection);

        if ((cs & 3) != 3)
        {
            // Ring 0 faulted: a platform bug (stock KVM runs the stubs at CPL 0).
            throw new SandboxException(KvmDiagnostics.Describe("the ring-0 code faulted", in *_sync, s, info));
        }

        int signal = ExceptionMap.Signal(vector);
        if (signal == 0)
            throw new SandboxException(KvmDiagnostics.Describe("an exception Linux never sends to a program", in *_sync, s, info));

        // A fault at CPL 3 inside the reserved area: on kvm_pvm the syscall stub runs at CPL 3, so this is where a
        // broken layout shows (issue 7: #PF at LSTAR). A program that jumps there itself gets the same SIGSEGV
        // Linux would give it, but the VMM log says exactly what happened.
        if (rip < GuestLayout.ReservedSize)
            _log?.Invoke(KvmDiagnostics.Describe("a fault at CPL 3 in the platform's stubs (the program gets SIGSEGV)", in *_sync, s, info));

        TakeGprs(in *_sync);
        _regs.OrigRax = ulong.MaxValue; // not in a system call
        _regs.Rip = rip;
        _regs.Eflags = rflags;
        _regs.Rsp = rsp;
        TakeSegments();
        _presented = _regs;
        // The reserved area is present but supervisor-only: to the program (and in its sigcontext) nothing is mapped there.
        if (vector == ExceptionMap.PageFault && s.Cr2 < GuestLayout.ReservedSize) error &= ~1UL;
        return new VcpuExit(VcpuExitKind.Fault, signal, ExceptionMap.FaultAddress(vector, rip, s.Cr2), ExceptionMap.Code(vector, error), vector, error);
    }

    /// <summary>KVM_RUN returned EINTR (a kick, immediate_exit or another signal). True: return Kicked, with
    /// <see cref="Regs"/> describing the program; false: the vCPU is inside a stub and must run on to its out.</summary>
    private bool Interrupted(bool asked)
    {
        bool kicked = _vcpu.ImmediateExit;
        kicked |= _kicker.AcknowledgeKick() > 0;
        ref readonly KvmRegs k = ref *_sync;
        if (k.Rip >= GuestLayout.ReservedSize)
        {
            // The program's own code (it can execute nothing of the reserved area but the stub page).
            PresentOwnCode(in k);
            _inKernel = false;
            return true;
        }
        // Still at the resume iretq: nothing ran since we entered (leaving it takes an out), so Regs are still right
        // and the next Run loads them again. Anywhere else in the reserved area the vCPU is inside a stub (at CPL 0
        // on stock KVM, CPL 3 on kvm_pvm, or the program jumped into the user-executable stub page), whose
        // straight-line code reaches an out or faults within a few instructions.
        if (k.Rip == Stubs.ResumeAddress) return true;
        if (kicked && asked) _deferredKick = true;
        return false;
    }

    private static ulong UserFlags(ulong eflags) =>
        (eflags & GuestLayout.UserFlagMask) | GuestLayout.FlagIf | GuestLayout.FlagFixed;

    private static bool Same(in UserRegs a, in UserRegs b) =>
        MemoryMarshal.AsBytes(new ReadOnlySpan<UserRegs>(in a)).SequenceEqual(MemoryMarshal.AsBytes(new ReadOnlySpan<UserRegs>(in b)));

    private ulong ReadPhysical(ulong address) => *(ulong*)(_ram + address);

    private SandboxException Unexpected(in KvmExit exit)
    {
        string what = exit.Reason switch
        {
            KvmExitReason.Shutdown => "the vCPU shut down (triple fault)",
            KvmExitReason.FailEntry => $"VM entry failed (hardware reason 0x{exit.HardwareEntryFailureReason:x})",
            KvmExitReason.InternalError => $"KVM internal error (suberror {exit.InternalSuberror}{InternalData()})",
            KvmExitReason.Mmio => $"an access to unbacked guest-physical address 0x{exit.MmioAddress:x}",
            KvmExitReason.Hlt => "the vCPU halted",
            KvmExitReason.Io => $"unexpected port I/O ({exit})",
            _ => $"unexpected exit {exit}",
        };
        KvmSregs? sregs = null;
        try
        {
            sregs = _vcpu.GetSregs();
        }
        catch (KvmException)
        {
            // the block says they are unavailable
        }
        return new SandboxException(KvmDiagnostics.Describe($"the vCPU stopped: {what}", in *_sync, sregs, null));
    }

    private string InternalData()
    {
        ref KvmRunInternal i = ref _run->Exit.Internal;
        int n = (int)Math.Min(i.Ndata, 16u);
        if (n == 0) return "";
        var words = new string[n];
        for (int j = 0; j < n; j++) words[j] = $"0x{i.DataSpan[j]:x}";
        return ", data " + string.Join(" ", words);
    }

    // ---- kicks ------------------------------------------------------------------------------------------------

    public void Kick()
    {
        if (Volatile.Read(ref _disposed)) return;
        Volatile.Write(ref _kickAsked, 1);
        _kicker.Kick();
    }

    // ---- TLB shootdown ----------------------------------------------------------------------------------------

    /// <summary>1 while the thread is inside KVM_RUN (or about to enter it, having checked the flush generation).</summary>
    private int _inGuest;
    /// <summary>1 when <see cref="Kick"/> was called and its Kicked exit not yet returned (a shootdown's kick is not one).</summary>
    private int _kickAsked;

    /// <summary>True while the vCPU is in the guest (tests).</summary>
    internal bool InGuest => Volatile.Read(ref _inGuest) != 0;

    /// <summary>The flush generation this vCPU has flushed for, and the VM's (tests).</summary>
    internal long FlushedGeneration => Volatile.Read(ref _flushSeen);
    internal long VmFlushGeneration => _machine.Tlb.Generation;

    /// <summary>KVM_RUN, after the flush a taken-away permission asks for. Publishing <see cref="_inGuest"/> before
    /// reading the generation again pairs with <see cref="KvmMachine.Shootdown"/>, which bumps the generation before
    /// reading <see cref="_inGuest"/>: either this vCPU sees the new generation and flushes first, or the shootdown sees
    /// it in the guest and kicks it.</summary>
    private KvmExit EnterGuest()
    {
        while (true)
        {
            FlushIfNeeded();
            Interlocked.Exchange(ref _inGuest, 1);
            if (_machine.Tlb.Generation == Volatile.Read(ref _flushSeen)) break;
            Volatile.Write(ref _inGuest, 0);
        }
        try
        {
            return _vcpu.Run();
        }
        finally
        {
            Volatile.Write(ref _inGuest, 0);
        }
    }

    /// <summary>From a sibling's thread: make this vCPU leave the guest if it may still hold TLB entries older than
    /// <paramref name="generation"/>; it flushes before it enters again.</summary>
    internal void KickForFlush(long generation)
    {
        if (Volatile.Read(ref _inGuest) != 0 && Volatile.Read(ref _flushSeen) < generation && !Volatile.Read(ref _disposed))
            _kicker.Kick();
    }

    /// <summary>From a sibling's thread: waits until this vCPU is out of the guest or has flushed for
    /// <paramref name="generation"/> (a few microseconds: a kicked vCPU leaves KVM_RUN at once).</summary>
    internal void AwaitFlush(long generation)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref _inGuest) != 0 && Volatile.Read(ref _flushSeen) < generation && !Volatile.Read(ref _disposed))
        {
            spin.SpinOnce();
            if (spin.Count % 64 == 63) KickForFlush(generation); // a kick that raced with its entry
        }
    }

    // ---- checkpoints ------------------------------------------------------------------------------------------

    /// <summary>
    /// The guest's FPU/SSE/AVX state in the neutral form (<see cref="FpuState"/>): KVM_GET_XSAVE (KVM_GET_XSAVE2 where
    /// the area is larger) is already the standard XSAVE format with this host's offsets, taken under the guest's XCR0
    /// (<see cref="GuestXcr0"/>). Nothing else of KVM's state travels: segments, control registers, MSRs, the
    /// descriptor tables and the stubs are the platform's and are rebuilt by whichever platform restores.
    /// </summary>
    public byte[] SaveExtendedState()
    {
        CheckOwner();
        try
        {
            return FpuState.FromHostArea(_vcpu.GetXsave(), GuestXcr0()).Serialize();
        }
        catch (KvmException e)
        {
            throw new SandboxException($"cannot save the vCPU state: {e.Message}", e);
        }
    }

    private byte[] _xsaveKept = [], _fpuKept = []; // SaveExtendedStateKept's buffers, grown once

    /// <summary><see cref="SaveExtendedState"/> into buffers this vCPU keeps: nothing allocated per checkpoint.</summary>
    public ReadOnlySpan<byte> SaveExtendedStateKept()
    {
        CheckOwner();
        try
        {
            if (_xsaveKept.Length < _vcpu.XsaveSize) _xsaveKept = new byte[_vcpu.XsaveSize];
            var area = _xsaveKept.AsSpan(0, _vcpu.XsaveSize);
            _vcpu.GetXsave(area);
            if (_fpuKept.Length < FpuState.MaxSerializedSize(area.Length)) _fpuKept = new byte[FpuState.MaxSerializedSize(area.Length)];
            int n = FpuState.SerializeHostArea(area, GuestXcr0(), _fpuKept);
            return _fpuKept.AsSpan(0, n);
        }
        catch (KvmException e)
        {
            throw new SandboxException($"cannot save the vCPU state: {e.Message}", e);
        }
    }

    /// <summary>Loads a neutral FPU state taken on any platform (<see cref="FpuState.ToArea"/> moves it into this
    /// vCPU's layout and refuses a component in use that this vCPU lacks). <see cref="Regs"/>, set by the caller, is
    /// loaded by the next <see cref="Run"/>: through the resume iretq when the vCPU sits in a stub (a fresh vCPU does),
    /// directly otherwise.</summary>
    public void RestoreExtendedState(ReadOnlySpan<byte> state)
    {
        CheckOwner();
        FpuState saved;
        try
        {
            saved = FpuState.Parse(state);
        }
        catch (InvalidDataException e)
        {
            throw new SandboxException($"corrupt vCPU state in the checkpoint: {e.Message}", e);
        }
        try
        {
            byte[] area = saved.ToArea(_vcpu.GetXsave(), GuestXcr0(), "kvm");
            _vcpu.SetXsave(area);
        }
        catch (KvmException e)
        {
            throw new SandboxException(
                $"cannot restore the vCPU state: this host's KVM refused the saved FPU/vector registers ({e.Message}); " +
                $"they hold {XsaveLayout.Names(saved.InUse)} state", e);
        }
        _forceLoad = !_inKernel;
        _deferredKick = false;
    }

    /// <summary>
    /// The XCR0 the guest runs under: KVM_GET_XCRS where the vCPU has XSAVE enabled (stock KVM). Where KVM offers no
    /// XSAVE in its CPUID (kvm_pvm, issue 7 fact 6) the guest's ring 3 runs on the host's own XCR0 nevertheless
    /// (xgetbv reads it there, and AVX-512 works), so that is the one its state is taken under.
    /// </summary>
    private ulong GuestXcr0()
    {
        if (!_xsaveEnabled) return XsaveLayout.HostXcr0;
        KvmXcrs x = _vcpu.GetXcrs();
        for (int i = 0; i < x.NrXcrs && i < 16; i++)
            if (x.Xcrs[i].Xcr == 0) return x.Xcrs[i].Value;
        return 3;
    }

    /// <summary>The state components present in an XSAVE area (XSTATE_BV, byte 512 of the header), by name.</summary>
    internal static string XsaveComponents(ReadOnlySpan<byte> xsave)
    {
        if (xsave.Length < 520) return "unknown";
        ulong bv = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(xsave[512..]);
        var names = new List<string>();
        if ((bv & 3) != 0) names.Add("x87/SSE");
        if ((bv & CpuConfig.XcrAvx) != 0) names.Add("AVX (ymm)");
        if ((bv & CpuConfig.XcrAvx512) != 0) names.Add("AVX-512 (zmm, opmask)");
        if ((bv & (1UL << 9)) != 0) names.Add("PKRU");
        if ((bv & ~(3UL | CpuConfig.XcrAvx | CpuConfig.XcrAvx512 | (1UL << 9))) != 0) names.Add("other");
        return $"{(names.Count == 0 ? "no" : string.Join(", ", names))} (XSTATE_BV 0x{bv:x})";
    }

    // ---- signal frames -----------------------------------------------------------------------------------------

    private ulong _xcr0;

    /// <summary>
    /// The guest's XCR0 as configured; when the CPUID KVM offers has no XSAVE (kvm_pvm), the guest still runs with the
    /// host's XCR0, which KVM_GET_XSAVE reports in the first software-reserved word (as ptrace's regset does).
    /// </summary>
    public ulong XstateFeatures
    {
        get
        {
            if (_xcr0 == 0)
            {
                byte[] all = Checked(() => _vcpu.GetXsave(), "KVM_GET_XSAVE");
                _xcr0 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(all.AsSpan(XsaveLayout.SwReservedOffset)) | XsaveLayout.FpSse;
            }
            return _xcr0;
        }
    }

    /// <summary>KVM's whole XSAVE area as last read: past the part XCR0 covers it holds only state the guest cannot
    /// change, so <see cref="SetXstate"/> completes an area from it without reading again.</summary>
    private byte[]? _xsaveArea;

    /// <summary>KVM_GET_XSAVE(2) is the standard format; the frame holds the part XCR0 covers.</summary>
    public byte[] GetXstate()
    {
        CheckOwner();
        byte[] all = Checked(() => _vcpu.GetXsave(), "KVM_GET_XSAVE");
        _xsaveArea = all;
        return all.AsSpan(0, Math.Min(all.Length, XsaveLayout.UserSize(XstateFeatures))).ToArray();
    }

    /// <summary>KVM_SET_XSAVE of the vCPU's area with its first part replaced by <paramref name="area"/>.</summary>
    public void SetXstate(ReadOnlySpan<byte> area)
    {
        CheckOwner();
        byte[] all = (byte[]?)_xsaveArea?.Clone() ?? Checked(() => _vcpu.GetXsave(), "KVM_GET_XSAVE");
        area[..Math.Min(area.Length, all.Length)].CopyTo(all);
        Checked(() => _vcpu.SetXsave(all), "KVM_SET_XSAVE");
    }

    // ---- dirty log --------------------------------------------------------------------------------------------

    /// <summary>Switches on KVM_MEM_LOG_DIRTY_PAGES for guest RAM (see <see cref="KvmSlotDirtyLog"/>). Paused, on the
    /// vCPU thread; idempotent.</summary>
    public void StartDirtyLog()
    {
        CheckOwner();
        try
        {
            _dirtyLog.Start();
        }
        catch (KvmException e)
        {
            throw new SandboxException($"dirty-page tracking is not available on this host (KVM: {e.Message})", e);
        }
    }

    /// <summary>KVM_GET_DIRTY_LOG: ORs the program pages the vCPU wrote since the last harvest into
    /// <paramref name="bitmap"/>. Any thread, running or paused. The VMM's own writes are merged by the caller.</summary>
    public void HarvestDirty(Span<ulong> bitmap)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            _dirtyLog.Harvest(bitmap);
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM dirty log failed: {e.Message}", e);
        }
    }

    /// <summary>The same into a <see cref="DirtyPageSet"/> (the words KVM reports are added as they are read).</summary>
    public void HarvestDirty(DirtyPageSet set)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            _dirtyLog.Harvest(set);
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM dirty log failed: {e.Message}", e);
        }
    }

    /// <summary>See <see cref="KvmSlotDirtyLog.SetUntracked"/> (honoured in manual-protect mode only). Any thread.</summary>
    public void SetUntracked(ReadOnlySpan<ulong> bitmap)
    {
        if (!Volatile.Read(ref _disposed)) _dirtyLog.SetUntracked(bitmap);
    }

    // ---- plumbing ---------------------------------------------------------------------------------------------

    private void CheckOwner()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Environment.CurrentManagedThreadId != _ownerThread)
            throw new InvalidOperationException("a KVM vCPU may only be used on the thread that created it");
    }

    private static T Checked<T>(Func<T> call, string what)
    {
        try
        {
            return call();
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM vCPU failed: {what}: {e.Message}", e);
        }
    }

    private static void Checked(Action call, string what)
    {
        try
        {
            call();
        }
        catch (KvmException e)
        {
            throw new SandboxException($"the KVM vCPU failed: {what}: {e.Message}", e);
        }
    }

    /// <summary>Closes this vCPU without disturbing its siblings: its area goes back to the VM, and its KVM vCPU is
    /// parked there for the next sibling (only when closed on its own thread, where it cannot be running); the VM goes
    /// with the last vCPU.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Volatile.Write(ref _disposed, true);
        _machine.Detach(this);
        _kicker.Dispose(); // on the vCPU thread: drains pending kicks and restores the signal mask
        bool own = Environment.CurrentManagedThreadId == _ownerThread;
        if (!own) _vcpu.Dispose();
        _machine.Release(_cpu.Index, own ? _vcpu : null);
    }
}
