using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// The ptrace platform (gVisor's "ptrace" platform, for hosts without /dev/kvm): the guest program's ring 3 runs in
/// a stub process whose address space holds nothing but the stub and the guest RAM memfd, mapped at the same
/// addresses as in the micro-VM layout. PTRACE_SYSEMU stops it at every <c>syscall</c> before the host kernel sees
/// it, so the host never executes a guest system call; this process serves them all. Faults arrive as signals.
/// The vCPU is bound to the thread that created it (ptrace requests must come from the tracer thread).
/// Paged address space (docs/memory.md): the stub's own stack, heap and vDSO are unmapped at start, so all of the
/// 47-bit range but its code page is the program's; nothing of guest RAM is mapped until the program touches it: the
/// SIGSEGV goes to the kernel's fault handler, which backs the page and has it mapped here
/// (<see cref="MapPages"/>: an mmap of the frames' run of the RAM memfd the stub keeps open); a translation that
/// changes is unmapped here (<see cref="TranslationChanged"/>) and faults back in.
/// </summary>
internal sealed unsafe partial class PtraceVcpu : IVcpu
{
    private const int KickSignal = Libc.SIGUSR2;

    /// <summary>The thread of the stub this vCPU traces (the stub's pid for its first vCPU).</summary>
    private readonly int _pid;
    private UserRegs _regs;
    private readonly UserRegs _stubRegs;
    private bool _regsDirty;
    private readonly GuestMemory _memory;
    /// <summary>What the stub's threads share: its pid and the dirty log of its one address space.</summary>
    private readonly StubProcess _stub;
    private bool _dead;
    /// <summary>The page of this thread's last SIGSEGV, until its next system call (see <see cref="RetireColdRegions"/>).</summary>
    private ulong _lastFaultPage = ulong.MaxValue;
    private long _lastCpuNs;

    public ref UserRegs Regs => ref _regs;

    public PtraceVcpu(GuestMemory memory, bool paged = false)
    {
        _memory = memory;
        _pid = SpawnStub();
        _stub = new StubProcess(_pid, paged);
        try
        {
            Check(Libc.ptrace(Libc.PTRACE_SEIZE, _pid, 0, (nint)(Libc.PTRACE_O_EXITKILL | Libc.PTRACE_O_TRACESYSGOOD)), "PTRACE_SEIZE");
            Check(Libc.ptrace(Libc.PTRACE_INTERRUPT, _pid, 0, 0), "PTRACE_INTERRUPT");
            WaitStop();
            GetRegs(ref _stubRegs);
            // The stub's signal state is whatever the spawning thread had: clear the mask and make the kick signal
            // deliverable (a stop we intercept), so Kick() always reaches it.
            Inject(14, 2 /* SIG_SETMASK */, StubProgram.Zeros, 0, 8);              // rt_sigprocmask
            Inject(13, KickSignal, StubProgram.Zeros, 0, 8);                         // rt_sigaction(SIG_DFL)
            if (paged)
            {
                // Everything but the stub's code page goes: the program's address space is the rest (the memfd stays open).
                Inject(11, 0, StubProgram.LoadAddress);                                                   // munmap
                Inject(11, StubProgram.LoadAddress + GuestMemory.PageSize, Memory.AddressSpace.TaskSize - StubProgram.LoadAddress - GuestMemory.PageSize);
                _regs = _stubRegs;
                _regsDirty = true;
                return;
            }
            long at = Inject(9, GuestMemory.UserBase, memory.Size - GuestMemory.UserBase,
                Libc.PROT_READ | Libc.PROT_WRITE | Libc.PROT_EXEC, Libc.MAP_SHARED | Libc.MAP_FIXED,
                (ulong)memory.Fd, GuestMemory.UserBase);                             // mmap guest RAM
            if (at != (long)GuestMemory.UserBase)
                throw new SandboxException($"cannot map guest memory into the vCPU process: {Libc.ErrnoText((int)-at)}");
            Inject(3, (ulong)memory.Fd);                                             // close
            _regs = _stubRegs;
            _regsDirty = true;
        }
        catch
        {
            Destroy();
            throw;
        }
    }

    private static int SpawnStub()
    {
        byte[] image = StubProgram.Build();
        int fd = Libc.memfd_create("remus-vcpu", Libc.MFD_CLOEXEC);
        if (fd < 0) throw new SandboxException($"cannot create the vCPU process: {Libc.ErrnoText(Libc.Errno)}");
        try
        {
            fixed (byte* p = image)
                if (Libc.write(fd, p, (nuint)image.Length) != image.Length)
                    throw new SandboxException($"cannot create the vCPU process: {Libc.ErrnoText(Libc.Errno)}");
            string path = $"/proc/self/fd/{fd}";
            nint arg0 = Marshal.StringToCoTaskMemUTF8("remus-vcpu");
            try
            {
                nint* argv = stackalloc nint[2] { arg0, 0 };
                nint* envp = stackalloc nint[1] { 0 };
                int pid;
                int rc = Libc.posix_spawn(&pid, path, 0, 0, argv, envp);
                if (rc != 0) throw new SandboxException($"cannot start the vCPU process: {Libc.ErrnoText(rc)}");
                return pid;
            }
            finally
            {
                Marshal.FreeCoTaskMem(arg0);
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>Runs one system call inside the stub, on its own registers, and returns its result.</summary>
    private long Inject(ulong nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0)
    {
        UserRegs r = _stubRegs;
        r.Rip = StubProgram.SyscallInstruction;
        r.Rax = nr;
        r.OrigRax = ulong.MaxValue; // not inside a syscall: no restart logic on resume
        r.Rdi = a0; r.Rsi = a1; r.Rdx = a2; r.R10 = a3; r.R8 = a4; r.R9 = a5;
        SetRegs(in r);
        _regsDirty = true; // the guest's registers go back in before it runs again
        // The stub may be sitting in the syscall-entry stop of a guest call we served: its exit stop, if the kernel
        // reports one, comes before our call's entry. Count only an exit that follows an entry.
        Span<byte> info = stackalloc byte[88];
        bool entered = false;
        while (true)
        {
            Check(Libc.ptrace(Libc.PTRACE_SYSCALL, _pid, 0, 0), "PTRACE_SYSCALL");
            if (WaitStop() != (Libc.SIGTRAP | 0x80)) continue;
            fixed (byte* p = info)
                Check(Libc.ptrace(Libc.PTRACE_GET_SYSCALL_INFO, _pid, info.Length, (nint)p), "PTRACE_GET_SYSCALL_INFO");
            if (info[0] == 1) entered = true;            // PTRACE_SYSCALL_INFO_ENTRY
            else if (info[0] == 2 && entered) break;     // PTRACE_SYSCALL_INFO_EXIT
        }
        GetRegs(ref r);
        return (long)r.Rax;
    }

    public VcpuExit Run()
    {
        if (_dead) throw new InvalidOperationException("the vCPU process is gone");
        if (_stub.DirtyLog is { ColdPending: true } log) RetireColdRegions(log);
        if (_regsDirty)
        {
            SetRegs(in _regs);
            _regsDirty = false;
        }
        Check(Libc.ptrace(Libc.PTRACE_SYSEMU, _pid, 0, 0), "PTRACE_SYSEMU");
        int sig = WaitStop(out int status);
        GetRegs(ref _regs);
        _regsDirty = true; // the kernel layer usually writes rax; reloading is cheaper than tracking every write
        if (sig == (Libc.SIGTRAP | 0x80))
        {
            _lastFaultPage = ulong.MaxValue;
            return VcpuExit.SyscallExit;
        }
        if ((status >> 16) != 0 || sig == KickSignal) return VcpuExit.KickedExit;
        switch (sig)
        {
            case 4: case 5: case 7: case 8: case 11: // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
                Span<byte> info = stackalloc byte[128];
                ulong addr = 0;
                int code = 0x80; // SI_KERNEL
                fixed (byte* p = info)
                    if (Libc.ptrace(Libc.PTRACE_GETSIGINFO, _pid, 0, (nint)p) == 0)
                    {
                        code = *(int*)(p + 8);
                        addr = *(ulong*)(p + 16);
                    }
                if (sig == 11) _lastFaultPage = addr & ~(GuestMemory.PageSize - 1);
                return new VcpuExit(VcpuExitKind.Fault, sig, addr, code);
            default:
                return VcpuExit.KickedExit; // a stray signal (e.g. the terminal's SIGINT): suppressed
        }
    }

    /// <summary>The stub process's CPU time (user and system, as the scheduler counts it): the guest's ring 3 alone.</summary>
    public long CpuTimeNs => _dead ? _lastCpuNs : _lastCpuNs = Math.Max(_lastCpuNs, Libc.ClockNs(Libc.ProcessCpuClock(_stub.Pid)));

    public void Kick()
    {
        if (!_dead) Libc.tgkill(_stub.Pid, _pid, KickSignal); // this thread only: the stub may have several
    }

    /// <summary>The stub's XSAVE area (NT_X86_XSTATE: the standard format, the user XCR0 in its first software-reserved
    /// word, as gdb reads it) in the neutral form.</summary>
    public byte[] SaveExtendedState()
    {
        byte[] area = ReadXstate();
        ulong xcr0 = BitConverter.ToUInt64(area, XsaveLayout.SoftwareReserved);
        return FpuState.FromHostArea(area, xcr0 != 0 ? xcr0 : XsaveLayout.HostXcr0).Serialize();
    }

    private byte[] _xstateKept = [], _fpuKept = []; // SaveExtendedStateKept's buffers, grown once

    /// <summary><see cref="SaveExtendedState"/> into buffers this vCPU keeps: nothing allocated per checkpoint.</summary>
    public ReadOnlySpan<byte> SaveExtendedStateKept()
    {
        if (_xstateKept.Length == 0) _xstateKept = new byte[16384];
        ReadOnlySpan<byte> area = ReadXstate(_xstateKept);
        ulong xcr0 = BinaryPrimitives.ReadUInt64LittleEndian(area[XsaveLayout.SoftwareReserved..]);
        if (_fpuKept.Length < FpuState.MaxSerializedSize(area.Length)) _fpuKept = new byte[FpuState.MaxSerializedSize(area.Length)];
        int n = FpuState.SerializeHostArea(area, xcr0 != 0 ? xcr0 : XsaveLayout.HostXcr0, _fpuKept);
        return _fpuKept.AsSpan(0, n);
    }

    /// <summary>Loads a neutral FPU state from any platform into the stub (<see cref="FpuState.ToArea"/>).</summary>
    public void RestoreExtendedState(ReadOnlySpan<byte> state)
    {
        FpuState saved;
        try
        {
            saved = FpuState.Parse(state);
        }
        catch (InvalidDataException e)
        {
            throw new SandboxException($"corrupt vCPU state in the checkpoint: {e.Message}", e);
        }
        byte[] own = ReadXstate();
        ulong xcr0 = BitConverter.ToUInt64(own, XsaveLayout.SoftwareReserved);
        WriteXstate(saved.ToArea(own, xcr0 != 0 ? xcr0 : XsaveLayout.HostXcr0, "ptrace"));
    }

    private byte[] ReadXstate() => ReadXstate(new byte[16384]).ToArray();

    /// <summary>The stub's XSAVE area, read into <paramref name="buf"/>: the part the kernel filled.</summary>
    private Span<byte> ReadXstate(byte[] buf)
    {
        int length;
        fixed (byte* p = buf)
        {
            var iov = stackalloc nint[2] { (nint)p, buf.Length };
            Check(Libc.ptrace(Libc.PTRACE_GETREGSET, _pid, Libc.NT_X86_XSTATE, (nint)iov), "PTRACE_GETREGSET");
            length = (int)iov[1];
        }
        return buf.AsSpan(0, length);
    }

    private void WriteXstate(ReadOnlySpan<byte> area)
    {
        fixed (byte* p = area)
        {
            var iov = stackalloc nint[2] { (nint)p, area.Length };
            Check(Libc.ptrace(Libc.PTRACE_SETREGSET, _pid, Libc.NT_X86_XSTATE, (nint)iov), "PTRACE_SETREGSET");
        }
    }

    /// <summary>PTRACE_GETREGSET NT_X86_XSTATE is the standard-format area a signal frame holds, sized for the host's
    /// user features (which the stub runs with).</summary>
    public byte[] GetXstate() => ReadXstate();

    public void SetXstate(ReadOnlySpan<byte> area) => WriteXstate(area);

    private ulong _xfeatures;

    /// <summary>The host's XCR0, which the regset reports in the first word of the software-reserved bytes
    /// (USER_XSTATE_XCR0_WORD of asm/user.h).</summary>
    public ulong XstateFeatures
    {
        get
        {
            if (_xfeatures == 0)
            {
                byte[] area = ReadXstate();
                _xfeatures = area.Length >= XsaveLayout.MinSize
                    ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(area.AsSpan(XsaveLayout.SwReservedOffset)) | XsaveLayout.FpSse
                    : XsaveLayout.FpSse;
            }
            return _xfeatures;
        }
    }

    /// <summary>Mirrors the program's permissions into the stub with an mprotect of the guest RAM mapping there.</summary>
    public void ProtectRange(ulong start, ulong length, int prot)
    {
        if (_dead || length == 0) return;
        ulong hostProt = prot < 0 ? 0 : (ulong)prot & (Libc.PROT_READ | Libc.PROT_WRITE | Libc.PROT_EXEC);
        long rc = Inject(10, start, length, hostProt); // mprotect
        if (rc < 0) throw new SandboxException($"cannot set page permissions in the vCPU process: {Libc.ErrnoText((int)-rc)}");
    }

    /// <summary>Maps the frames a fault backed into the stub: one mmap of their run of the RAM memfd.</summary>
    public void MapPages(ulong start, ulong firstFrame, ulong pages, int prot)
    {
        if (_dead || !_stub.Paged || pages == 0) return;
        ulong hostProt = (ulong)Math.Max(0, prot) & (Libc.PROT_READ | Libc.PROT_WRITE | Libc.PROT_EXEC);
        ulong length = pages * GuestMemory.PageSize;
        lock (_stub.MapLock)
        {
            long at = Inject(9, start, length, hostProt, Libc.MAP_SHARED | Libc.MAP_FIXED, (ulong)_memory.Fd, firstFrame * GuestMemory.PageSize);
            if (at != (long)start) throw new SandboxException($"cannot map guest memory into the vCPU process: {Libc.ErrnoText((int)-at)}");
            for (ulong i = 0; i < pages; i++) _stub.Pages[start / GuestMemory.PageSize + i] = firstFrame + i;
            _stub.DirtyLog?.Register(start, length);
        }
    }

    /// <summary>Unmaps [start, start+length) in the stub: whatever is still the program's faults back in.</summary>
    public void TranslationChanged(ulong start, ulong length)
    {
        if (_dead || !_stub.Paged || length == 0) return;
        lock (_stub.MapLock)
        {
            long rc = Inject(11, start, length); // munmap
            if (rc < 0) throw new SandboxException($"cannot unmap guest memory in the vCPU process: {Libc.ErrnoText((int)-rc)}");
            ulong first = start / GuestMemory.PageSize, end = first + length / GuestMemory.PageSize;
            if (length / GuestMemory.PageSize < (ulong)_stub.Pages.Count)
                for (ulong p = first; p < end; p++) _stub.Pages.Remove(p);
            else
                foreach (ulong p in _stub.Pages.Keys.Where(p => p >= first && p < end).ToList()) _stub.Pages.Remove(p);
        }
    }

    /// <summary>
    /// Unmaps in the stub the regions the dirty log found cold (<see cref="ColdRegions"/>), so its harvests no longer
    /// scan them: a last scan reports what was written there since the last harvest, then the unmap; the program's
    /// next access there is a demand fault that maps the pages back, registered with the log. On this vCPU's thread
    /// with its stub thread stopped, before it runs, and only while the stub has one thread (no other can write
    /// between the scan and the unmap). A region holding the page this thread last demand-faulted is kept until the
    /// thread made progress: the kernel takes a second fault on that page for a mapping that failed (SIGBUS).
    /// </summary>
    private void RetireColdRegions(PtraceDirtyLog log)
    {
        Span<ulong> regions = stackalloc ulong[ColdRegions.MaxQueued];
        lock (_stub.MapLock)
        {
            int n = log.TakeColdRegions(regions);
            for (int i = 0; i < n; i++)
            {
                ulong start = regions[i] << ColdRegions.Shift, end = start + (1UL << ColdRegions.Shift);
                if (_stub.MultiThreaded || (_lastFaultPage >= start && _lastFaultPage < end))
                {
                    log.RegionKept(regions[i]);
                    continue;
                }
                log.ScanRetiring(start, end);
                for (ulong at = start; NextMappedRun(ref at, end, out ulong run); at += run) TranslationChanged(at, run);
                log.RegionUnmapped(regions[i]);
            }
        }
    }

    /// <summary>The next run of pages the stub maps for the program in [at, end): its start in <paramref name="at"/>, its length.</summary>
    private bool NextMappedRun(ref ulong at, ulong end, out ulong length)
    {
        while (at < end && !_stub.Pages.ContainsKey(at / GuestMemory.PageSize)) at += GuestMemory.PageSize;
        ulong stop = at;
        while (stop < end && _stub.Pages.ContainsKey(stop / GuestMemory.PageSize)) stop += GuestMemory.PageSize;
        length = stop - at;
        return length > 0;
    }

    /// <summary>The frame the stub maps at program page <paramref name="vpn"/>, or ulong.MaxValue.</summary>
    private ulong FrameOf(ulong vpn) => _stub.Pages.TryGetValue(vpn, out ulong pfn) ? pfn : ulong.MaxValue;

    public string DirtyLogMode => "userfaultfd write-protect + PAGEMAP_SCAN";

    public void StartDirtyLog()
    {
        lock (_stub)
            if (_stub.DirtyLog == null) _stub.DirtyLog = CreateDirtyLog();
    }

    private PtraceDirtyLog CreateDirtyLog()
    {
        long fd = Inject(Libc.SYS_userfaultfd, 0x80000 | 0x800); // O_CLOEXEC | O_NONBLOCK
        if (fd < 0) throw new SandboxException($"dirty-page tracking is not available on this host (userfaultfd: {Libc.ErrnoText((int)-fd)})");
        try
        {
            lock (_stub.MapLock)
            {
                if (!_stub.Paged) return new PtraceDirtyLog(_stub.Pid, (int)fd, GuestMemory.UserBase, _memory.Size);
                var log = new PtraceDirtyLog(_stub.Pid, (int)fd, GuestMemory.UserBase, Memory.AddressSpace.TaskSize, FrameOf, _memory.Size, _stub.Pages.Count > 0);
                ulong last = ulong.MaxValue;
                foreach (ulong vpn in _stub.Pages.Keys.Order()) // one call per region the stub maps into
                {
                    if (last != ulong.MaxValue && (vpn >> (ColdRegions.Shift - 12)) == (last >> (ColdRegions.Shift - 12))) continue;
                    log.SeedRegion(vpn);
                    last = vpn;
                }
                return log;
            }
        }
        finally
        {
            Inject(3, (ulong)fd); // the stub's copy; ours keeps the userfaultfd alive
        }
    }

    public void HarvestDirty(Span<ulong> bitmap)
    {
        var log = _stub.DirtyLog ?? throw new InvalidOperationException("the dirty log was not started");
        lock (_stub.MapLock) log.Harvest(bitmap);
    }

    public void HarvestDirty(DirtyPageSet set)
    {
        var log = _stub.DirtyLog ?? throw new InvalidOperationException("the dirty log was not started");
        lock (_stub.MapLock) log.Harvest(set);
    }

    public void SetUntracked(ReadOnlySpan<ulong> bitmap) => _stub.DirtyLog?.SetUntracked(bitmap); // no log: nothing is tracked

    private void GetRegs(ref UserRegs r)
    {
        fixed (UserRegs* p = &r) Check(Libc.ptrace(Libc.PTRACE_GETREGS, _pid, 0, (nint)p), "PTRACE_GETREGS");
    }

    private void SetRegs(in UserRegs r)
    {
        fixed (UserRegs* p = &r) Check(Libc.ptrace(Libc.PTRACE_SETREGS, _pid, 0, (nint)p), "PTRACE_SETREGS");
    }

    private int WaitStop() => WaitStop(out _);

    /// <summary>Waits for the next ptrace stop and returns its signal number (with 0x80 for syscall stops).</summary>
    private int WaitStop(out int status)
    {
        int st;
        while (true)
        {
            int rc = Libc.waitpid(_pid, &st, Libc.WALL);
            if (rc == _pid) break;
            if (rc < 0 && Libc.Errno == 4) continue; // EINTR
            throw new SandboxException($"lost the vCPU process: {Libc.ErrnoText(Libc.Errno)}");
        }
        status = st;
        if ((st & 0xff) != 0x7f) // not stopped: exited or killed
        {
            _dead = true;
            throw new SandboxException((st & 0x7f) == 0
                ? $"the vCPU process exited unexpectedly (status {(st >> 8) & 0xff})"
                : $"the vCPU process was killed by signal {st & 0x7f}");
        }
        return (st >> 8) & 0xff;
    }

    private void Check(long rc, string what)
    {
        if (rc < 0)
        {
            int e = Libc.Errno;
            if (e == 3) _dead = true; // ESRCH: gone
            throw new SandboxException($"{what} on the vCPU process failed: {Libc.ErrnoText(e)}");
        }
    }

    private void Destroy()
    {
        if (_pid <= 0) return;
        Libc.kill(_pid, Libc.SIGKILL);
        int st = 0;
        while (true)
        {
            int rc = Libc.waitpid(_pid, &st, Libc.WALL);
            if (rc < 0 && Libc.Errno == 4) continue;
            if (rc < 0 || (st & 0xff) != 0x7f) break; // reaped (or not ours any more)
        }
        _dead = true;
    }

    public void Dispose()
    {
        if (_pid != _stub.Pid)
        {
            ExitThread(); // a sibling: its stub thread goes, the stub and its dirty log stay
            return;
        }
        _stub.DirtyLog?.Dispose();
        Destroy();
    }
}
