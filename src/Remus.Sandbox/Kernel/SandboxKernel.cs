using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The Linux the program sees: serves its system calls against guest memory and the objects kept here (fd table,
/// address space, signal dispositions, clocks). One family of calls per file under Syscalls/, as gVisor does.
/// Every guest pointer is checked by <see cref="UserMemory"/> against the program's permissions; a bad one yields
/// -EFAULT (or a short count), never a VMM crash.
/// </summary>
internal sealed partial class SandboxKernel
{
    public const int Pid = 1;

    private readonly HashSet<long> _loggedUnsupported = [];

    /// <summary>
    /// <paramref name="incoming"/>: a domain a checkpoint will fill (a receiver): its volumes' roots are opened at
    /// their staging directories (Kernel/Volumes/VolumeTable.cs).
    /// </summary>
    public SandboxKernel(GuestMemory memory, AddressSpace mm, DomainSpec spec, IConsole console, FileAccessPolicy files,
        bool incoming = false)
    {
        Memory = new UserMemory(memory, mm);
        Mm = mm;
        Spec = spec;
        Console = console;
        Policy = files;
        Limits = new ResourceLimits(mm.StackSize, Math.Clamp(spec.MaxFds, DomainSpec.MinMaxFds, FdTable.MaxFds));
        Net = new Net.NetStack(() => Clock.MonotonicNs, spec.Network);
        Volumes = new Volumes.VolumeTable(spec.Volumes, incoming);
        Fds.Set(0, new ConsoleFile(console, 0, Clock), false);
        Fds.Set(1, new ConsoleFile(console, 1, Clock), false);
        Fds.Set(2, new ConsoleFile(console, 2, Clock), false);
        ApplyFdLimit();
    }

    /// <summary>The program's memory as system calls reach it: with its permissions (see <see cref="UserMemory"/>).</summary>
    public UserMemory Memory { get; }
    public AddressSpace Mm { get; }
    public DomainSpec Spec { get; }
    public IConsole Console { get; }
    public FileAccessPolicy Policy { get; }
    public FdTable Fds { get; } = new();
    public GuestClock Clock { get; } = new();
    public SignalState Signals { get; } = new();
    public ResourceLimits Limits { get; }

    /// <summary>The domain's TCP/IP stack (Net/): AF_INET sockets, loopback, and the tap interface when configured.</summary>
    public Net.NetStack Net { get; }

    /// <summary>The domain's volumes (writable host directories; Kernel/Volumes): roots, mount lookup, the journal.</summary>
    internal Volumes.VolumeTable Volumes { get; }

    /// <summary>The vCPU of the thread being served (<see cref="Current"/>); see <see cref="AttachVcpu"/>.</summary>
    public IVcpu? Vcpu => Current.Vcpu;

    /// <summary>
    /// Gives the kernel its vCPU, on the vCPU thread, once made. The program's CPU time starts at 0 from here: what the
    /// platform counted before (on KVM, the VMM thread's own start-up) is not the program's. A restore replaces it.
    /// </summary>
    public void AttachVcpu(IVcpu vcpu)
    {
        Leader.Vcpu = vcpu;
        BindThread(Leader);
        Clock.CpuOffsetNs = -vcpu.CpuTimeNs;
        if (Mm.Paged)
        {
            // Through the vCPU of the thread that changes the address space (ptrace: the calls are injected by that
            // thread's tracer; every thread shares the one stub address space, so one call covers them all).
            Mm.TranslationChanged = (start, length) => (Vcpu ?? vcpu).TranslationChanged(start, length);
            Mm.PagesMapped = (start, frame, pages, prot) => (Vcpu ?? vcpu).MapPages(start, frame, pages, prot);
            if (vcpu.KeepsPageTables)
            {
                Mm.KeepPageTables = true;
                Mm.FramesRetired = (frame, count) => (Vcpu ?? vcpu).RetireFrames(frame, count);
            }
        }
        else
        {
            // The program's permissions, enforced where the platform can, through the vCPU of the thread that changes them.
            Mm.ProtectionChanged = (start, length, prot) => (Vcpu ?? vcpu).ProtectRange(start, length, prot);
            Mm.PublishAll();
        }
    }

    /// <summary>Fires when a blocking call must give way (pause, checkpoint, destroy).</summary>
    public CancellationToken Interrupt { get; set; }

    public int ExitStatus { get; private set; }

    /// <summary>Where the kernel's own remarks go (unsupported syscalls): the VMM log, never the program's console.</summary>
    public Action<string>? Log { get; set; }

    private void Exit(int status) => ExitStatus = status;

    /// <summary>Serves the system call in <paramref name="r"/>; the result is left in rax.</summary>
    public SyscallOutcome Dispatch(ref UserRegs r)
    {
        long nr = (long)r.OrigRax;
        ulong a0 = r.Rdi, a1 = r.Rsi, a2 = r.Rdx, a3 = r.R10, a4 = r.R8, a5 = r.R9;
        long result;
        _lastDemandPage = NoDemandPage;
        TakeInterruptedWait(r.Rip);
        TakeInterruptedTransfer(r.Rip);
        StopSignal = 0;
        try
        {
            result = nr switch
            {
                // Io.cs
                0 => SysRead((int)a0, a1, a2),
                1 => SysWrite((int)a0, a1, a2),
                17 => SysPRead((int)a0, a1, a2, (long)a3),
                19 => SysReadV((int)a0, a1, a2),
                20 => SysWriteV((int)a0, a1, a2),
                8 => SysLseek((int)a0, (long)a1, (int)a2),
                16 => SysIoctl((int)a0, a1, a2),
                // Files.cs
                2 => SysOpenAt(AtFdCwd, a0, (int)a1, (int)a2),
                257 => SysOpenAt((int)a0, a1, (int)a2, (int)a3),
                3 => Fds.Close((int)a0),
                4 => SysStatAt(AtFdCwd, a0, a1, 0),
                5 => SysFstat((int)a0, a1),
                6 => SysStatAt(AtFdCwd, a0, a1, AtSymlinkNoFollow),
                262 => SysStatAt((int)a0, a1, a2, (int)a3),
                217 => SysGetDents64((int)a0, a1, a2),
                89 => SysReadLinkAt(AtFdCwd, a0, a1, a2),
                267 => SysReadLinkAt((int)a0, a1, a2, a3),
                21 => SysAccessAt(AtFdCwd, a0, (int)a1),
                269 => SysAccessAt((int)a0, a1, (int)a2),
                439 => SysAccessAt((int)a0, a1, (int)a2, (int)a3),
                79 => SysGetCwd(a0, a1),
                32 => SysDup((int)a0),
                33 => SysDup3((int)a0, (int)a1, 0, allowSame: true),
                292 => SysDup3((int)a0, (int)a1, (int)a2, allowSame: false),
                72 => SysFcntl((int)a0, (int)a1, a2),
                // Locks.cs
                73 => SysFlock((int)a0, (int)a1),
                // Memory.cs
                12 => SysBrk(a0),
                9 => SysMmap(a0, a1, (int)a2, (int)a3, (int)a4, (long)a5),
                11 => SysMunmap(a0, a1),
                25 => SysMremap(a0, a1, a2, (int)a3, a4),
                10 => SysMprotect(a0, a1, (int)a2),
                28 => SysMadvise(a0, a1, (int)a2),
                // Time.cs
                228 => SysClockGetTime((int)a0, a1),
                229 => SysClockGetRes((int)a0, a1),
                96 => SysGetTimeOfDay(a0, a1),
                201 => SysTime(a0),
                35 => SysNanosleep(CLOCK_MONOTONIC, 0, a0, a1, r.Rip),
                230 => SysNanosleep((int)a0, (int)a1, a2, a3, r.Rip),
                // Process.cs
                60 => SysExitThread((int)a0),
                231 => SysExit((int)a0),
                39 or 110 => nr == 110 ? 0 : Pid,
                102 or 104 or 107 or 108 => 0,
                63 => SysUname(a0),
                334 => -Errno.ENOSYS,
                158 => SysArchPrctl(ref r, (int)a0, a1),
                // Resources.cs
                302 => SysPrlimit((int)a0, (int)a1, a2, a3),
                97 => SysPrlimit(0, (int)a0, 0, a1),
                160 => SysPrlimit(0, (int)a0, a1, 0),
                98 => SysGetRusage((int)a0, a1),
                100 => SysTimes(a0),
                99 => SysSysinfo(a0),
                // Threads.cs, Clone.cs
                56 => SysClone(a0, a1, a2, a3, a4),
                186 => Current.Tid,
                218 => SysSetTidAddress(a0),
                273 => SysSetRobustList(a0, a1),
                274 => SysGetRobustList((int)a0, a1, a2),
                204 => SysSchedGetAffinity((int)a0, a1, a2),
                203 => SysSchedSetAffinity((int)a0, a1),
                24 => SysSchedYield(),
                309 => SysGetCpu(a0, a1),
                324 => SysMembarrier((int)a0, (uint)a1),
                // Futex.cs
                202 => SysFutex(a0, (int)a1, (uint)a2, a3, a4, (uint)a5, r.Rip),
                // Signals.cs
                13 => SysRtSigaction((int)a0, a1, a2, a3),
                14 => SysRtSigprocmask((int)a0, a1, a2, a3),
                127 => SysRtSigpending(a0, a1),
                131 => SysSigaltstack(a0, a1, r.Rsp),
                62 => SysKill((int)a0, (int)a1),
                200 => SysTgkill(-1, (int)a0, (int)a1),
                234 => SysTgkill((int)a0, (int)a1, (int)a2),
                129 => SysRtSigqueueinfo((int)a0, 0, (int)a1, a2, toTask: false),
                297 => SysRtSigqueueinfo((int)a0, (int)a1, (int)a2, a3, toTask: true),
                34 => SysPause(),
                130 => SysRtSigsuspend(a0, a1),
                15 => SysRtSigreturn(ref r),
                219 => SysRestartSyscall(r.Rip),
                // Timers.cs
                36 => SysGetitimer((int)a0, a1),
                37 => SysAlarm((uint)a0),
                38 => SysSetitimer((int)a0, a1, a2),
                222 => SysTimerCreate((int)a0, a1, a2),
                223 => SysTimerSettime((int)a0, (int)a1, a2, a3),
                224 => SysTimerGettime((int)a0, a1),
                225 => SysTimerGetoverrun((int)a0),
                226 => SysTimerDelete((int)a0),
                // Random.cs
                318 => SysGetRandom(a0, a1, (uint)a2),
                // Pipes.cs, EventFd.cs, TimerFd.cs
                22 => SysPipe2(a0, 0),
                293 => SysPipe2(a0, (int)a1),
                284 => SysEventFd2((uint)a0, 0),
                290 => SysEventFd2((uint)a0, (int)a1),
                283 => SysTimerFdCreate((int)a0, (int)a1),
                286 => SysTimerFdSetTime((int)a0, (int)a1, a2, a3),
                287 => SysTimerFdGetTime((int)a0, a1),
                // Poll.cs
                7 => SysPoll(a0, a1, (int)a2),
                271 => SysPPoll(a0, a1, a2, a3, a4),
                23 => SysSelect((int)a0, a1, a2, a3, a4),
                270 => SysPSelect6((int)a0, a1, a2, a3, a4, a5),
                // Epoll.cs
                213 => (int)a0 <= 0 ? -Errno.EINVAL : SysEpollCreate1(0),
                291 => SysEpollCreate1((int)a0),
                233 => SysEpollCtl((int)a0, (int)a1, (int)a2, a3),
                232 => SysEpollWait((int)a0, a1, (int)a2, (int)a3),
                281 => SysEpollPWait((int)a0, a1, (int)a2, (int)a3, a4, a5),
                441 => SysEpollPWait2((int)a0, a1, (int)a2, a3, a4, a5),
                // Statx.cs, Prctl.cs, SignalWait.cs (the runtimes' surface)
                332 => SysStatx((int)a0, a1, (int)a2, (uint)a3, a4),
                157 => SysPrctl((int)a0, a1, a2, a3, a4),
                128 => SysRtSigtimedwait(a0, a1, a2, a3, r.Rip),
                // Sockets.cs, SocketMessages.cs, SocketOptions.cs
                41 => SysSocket((int)a0, (int)a1, (int)a2),
                53 => SysSocketPair((int)a0, (int)a1, (int)a2, a3),
                49 => SysBind((int)a0, a1, (uint)a2),
                50 => SysListen((int)a0, (int)a1),
                43 => SysAccept((int)a0, a1, a2, 0),
                288 => SysAccept((int)a0, a1, a2, (int)a3),
                42 => SysConnect((int)a0, a1, (uint)a2),
                48 => SysShutdown((int)a0, (int)a1),
                51 => SysGetSockName((int)a0, a1, a2, peer: false),
                52 => SysGetSockName((int)a0, a1, a2, peer: true),
                44 => SysSendTo((int)a0, a1, a2, (int)a3, a4, (uint)a5),
                45 => SysRecvFrom((int)a0, a1, a2, (int)a3, a4, a5),
                46 => SysSendMsg((int)a0, a1, (int)a2),
                47 => SysRecvMsg((int)a0, a1, (int)a2),
                307 => SysSendMMsg((int)a0, a1, (uint)a2, (int)a3),
                299 => SysRecvMMsg((int)a0, a1, (uint)a2, (int)a3, a4),
                54 => SysSetSockOpt((int)a0, (int)a1, (int)a2, a3, (uint)a4),
                55 => SysGetSockOpt((int)a0, (int)a1, (int)a2, a3, a4),
                87 => SysUnlink(AtFdCwd, a0, 0),
                263 => SysUnlink((int)a0, a1, (int)a2),
                // Paths.cs
                85 => SysOpenAt(AtFdCwd, a0, 0x241 /* O_CREAT|O_WRONLY|O_TRUNC */, (int)a1),
                83 => SysMkdirAt(AtFdCwd, a0, (int)a1),
                258 => SysMkdirAt((int)a0, a1, (int)a2),
                84 => SysRmdir(a0),
                82 => SysRenameAt2(AtFdCwd, a0, AtFdCwd, a1, 0),
                264 => SysRenameAt2((int)a0, a1, (int)a2, a3, 0),
                316 => SysRenameAt2((int)a0, a1, (int)a2, a3, (uint)a4),
                86 => SysLinkAt(AtFdCwd, a0, AtFdCwd, a1, 0),
                265 => SysLinkAt((int)a0, a1, (int)a2, a3, (int)a4),
                88 => SysSymlinkAt(a0, AtFdCwd, a1),
                266 => SysSymlinkAt(a0, (int)a1, a2),
                95 => SysUmask((int)a0),
                // FileData.cs
                18 => SysPWrite((int)a0, a1, a2, (long)a3),
                74 => SysFsync((int)a0, dataOnly: false),
                75 => SysFsync((int)a0, dataOnly: true),
                277 => SysSyncFileRange((int)a0, (long)a1, (long)a2, (uint)a3),
                162 => SysSync(),
                306 => SysSyncfs((int)a0),
                76 => SysTruncate(a0, (long)a1),
                77 => SysFtruncate((int)a0, (long)a1),
                285 => SysFallocate((int)a0, (int)a1, (long)a2, (long)a3),
                // FileAttributes.cs
                90 => SysChmodAt(AtFdCwd, a0, (int)a1, 0),
                268 => SysChmodAt((int)a0, a1, (int)a2, 0),
                452 => SysChmodAt((int)a0, a1, (int)a2, (int)a3),
                91 => SysFchmod((int)a0, (int)a1),
                92 => SysFchownAt(AtFdCwd, a0, (int)a1, (int)a2, 0),
                93 => SysFchown((int)a0, (int)a1, (int)a2),
                94 => SysFchownAt(AtFdCwd, a0, (int)a1, (int)a2, AtSymlinkNoFollow),
                260 => SysFchownAt((int)a0, a1, (int)a2, (int)a3, (int)a4),
                280 => SysUtimensAt((int)a0, a1, a2, (int)a3),
                261 => SysUtimes((int)a0, a1, a2),
                235 => SysUtimes(AtFdCwd, a0, a1),
                132 => SysUtime(a0, a1),
                137 => SysStatfs(a0, a1),
                138 => SysFstatfs((int)a0, a1),
                _ => Unsupported(nr),
            };
        }
        catch (GuestFaultException)
        {
            result = -Errno.EFAULT;
        }
        catch (NameTooLongException)
        {
            result = -Errno.ENAMETOOLONG;
        }
        catch (SignalInterruptException e)
        {
            result = -e.Code;
        }
        catch (RestartException)
        {
            return SyscallOutcome.Restart;
        }
        catch (ExitException)
        {
            return SyscallOutcome.Exit;
        }
        catch (ThreadExitException)
        {
            return SyscallOutcome.ThreadExit;
        }
        r.Rax = (ulong)result;
        return DeliverSignals(ref r, afterSyscall: true);
    }

    private long Unsupported(long nr)
    {
        if (_loggedUnsupported.Add(nr)) Log?.Invoke($"unsupported system call {SyscallNames.Of(nr)} ({nr}): returning ENOSYS");
        return -Errno.ENOSYS;
    }

    /// <summary>
    /// Clamps a guest buffer to the part the program could read (EFAULT when that is nothing), as a partial transfer
    /// would on Linux. Prefer <see cref="ReadIntoUser"/>/<see cref="WriteFromUser"/>, which also honour write permission.
    /// </summary>
    private int ClampLength(ulong addr, ulong len, int max = 1 << 30, bool write = false)
    {
        if (len == 0) return 0;
        ulong n = Memory.Accessible(addr, Math.Min(len, (ulong)max), write);
        if (n == 0) throw new GuestFaultException(addr);
        return (int)n;
    }

    /// <summary>Thrown by a blocking call that was interrupted and must run again later.</summary>
    internal sealed class RestartException : Exception;

    /// <summary>Thrown by exit and fatal signals once <see cref="ExitStatus"/> is set.</summary>
    internal sealed class ExitException : Exception;
}
