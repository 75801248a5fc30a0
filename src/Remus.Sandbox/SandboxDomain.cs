using System.Security.Cryptography;
using Remus.Sandbox.Kernel;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Loader;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox;

/// <summary>
/// One domain: a micro-VM running one static program whose system calls this process serves.
/// Create() validates and loads; Run() drives the vCPU until the program exits; Pause/Unpause/Kill may be called
/// from any other thread. The vCPU lives on a thread of its own (ptrace and KVM bind a vCPU to one thread), which
/// Run() starts and waits for.
/// </summary>
public sealed partial class SandboxDomain : ICheckpointable
{
    private readonly GuestMemory _memory;
    private readonly SandboxKernel _kernel;
    private readonly LoadedProgram _start;
    private readonly Thread _thread;
    private readonly object _lock = new();
    private readonly ManualResetEventSlim _ready = new();
    private Exception? _startError;
    private IVcpu? _vcpu;
    private CancellationTokenSource _interrupt = new();
    private bool _go, _pauseRequested, _killRequested, _disposed;
    private DomainState _state = DomainState.Created;
    private readonly Lock _dirtyLogLock = new();
    private bool _vcpuGone;

    public DomainSpec Spec { get; }

    /// <summary>The platform the vCPU runs on and why (set by <see cref="Create"/>).</summary>
    public PlatformChoice Platform { get; private set; } = new(PlatformKind.Auto, "not chosen yet");

    /// <summary>Where the domain's own remarks go (unsupported syscalls, faults): the VMM log, not the console.</summary>
    public Action<string>? Log
    {
        get => _kernel.Log;
        set => _kernel.Log = value;
    }

    public DomainState State
    {
        get { lock (_lock) return _state == DomainState.Created && _pauseRequested ? DomainState.Paused : _state; }
    }

    /// <summary>
    /// Raised on the vCPU thread when the program stops itself (SIGSTOP, or SIGTSTP/SIGTTIN/SIGTTOU with the default
    /// action; the argument is the signal): the domain pauses as by <see cref="Pause"/>, and <see cref="Unpause"/>
    /// continues it, as SIGCONT would. <see cref="State"/> is already Paused when it is raised, so that whoever shows
    /// the domain's state (the toolstack) can show it paused. Handlers must not wait on the domain.
    /// </summary>
    public event Action<int>? Stopped;

    /// <summary>The exit status once <see cref="State"/> is Exited: 0-255, or 128+signal for a fatal signal.</summary>
    public int ExitStatus { get; private set; }

    /// <summary>The domain's volumes as the kernel has them (roots, the journal hook: Kernel/Volumes/VolumeTable.cs).</summary>
    internal Kernel.Volumes.VolumeTable VolumeTable => _kernel.Volumes;

    /// <summary>The program's address space (tests).</summary>
    internal Memory.AddressSpace AddressSpace => _kernel.Mm;

    private SandboxDomain(DomainSpec spec, GuestMemory memory, SandboxKernel kernel, LoadedProgram start)
    {
        Spec = spec;
        _memory = memory;
        _kernel = kernel;
        _start = start;
        _kernel.Interrupt = _interrupt.Token;
        _kernel.ThreadCreated = StartThread;
        _leaderRunner = new TaskRunner(kernel.Leader);
        _runners.Add(_leaderRunner);
        _thread = new Thread(VcpuThread) { Name = "vcpu0", IsBackground = true };
    }

    /// <summary>
    /// Validates the program (a clear <see cref="SandboxException"/> for a missing, non-ELF, 32-bit, dynamically
    /// linked or too large program), builds the VM and loads the program. Nothing is left behind on failure.
    /// </summary>
    public static SandboxDomain Create(DomainSpec spec, IConsole console) => Build(spec, console, incoming: false);

    private static SandboxDomain Build(DomainSpec spec, IConsole console, bool incoming)
    {
        if (spec.MemoryMiB < DomainSpec.MinMemoryMiB || spec.MemoryMiB > DomainSpec.MaxMemoryMiB)
            throw new SandboxException($"memory must be between {DomainSpec.MinMemoryMiB} and {DomainSpec.MaxMemoryMiB} MiB (got {spec.MemoryMiB})");
        if (spec.MaxFds < DomainSpec.MinMaxFds || spec.MaxFds > DomainSpec.MaxMaxFds)
            throw new SandboxException($"max_fds must be between {DomainSpec.MinMaxFds} and {DomainSpec.MaxMaxFds} (got {spec.MaxFds})");
        if (spec.MaxThreads is < 1 or > DomainSpec.MaxMaxThreads)
            throw new SandboxException($"max_threads must be between 1 and {DomainSpec.MaxMaxThreads} (got {spec.MaxThreads})");
        var elf = incoming ? null : ElfImage.Load(spec.ProgramPath);
        var policy = new FileAccessPolicy(spec.ProgramPath, spec.Files);
        var choice = PlatformSelection.Choose(spec.Platform);
        bool paged = PlatformSelector.RunsPaged(choice.Kind);
        ulong size = ((ulong)spec.MemoryMiB + 1) / 2 * 2 << 20;
        var memory = new GuestMemory(size);
        SandboxDomain? domain = null;
        try
        {
            var mm = new AddressSpace(memory, paged);
            var start = elf == null ? default : ProgramLoader.Load(elf, mm, spec, RandomNumberGenerator.GetBytes(16));
            var kernel = new SandboxKernel(memory, mm, spec, console, policy, incoming);
            domain = new SandboxDomain(spec, memory, kernel, start) { Platform = choice };
            domain._thread.Start();
            domain._ready.Wait();
            if (domain._startError != null) throw domain._startError;
            domain.PrepareNetwork();
            // A new domain's tap exists from the start (a name in use fails the create); an incoming one's is created
            // when it takes over (ConnectNetwork), not while its source still runs.
            if (!incoming) domain.ConnectNetwork(TimeSpan.Zero, announce: true);
            return domain;
        }
        catch
        {
            if (domain != null) domain.Dispose();
            else memory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="f"/> on the first thread's vCPU thread (ptrace and KVM calls must come from it) while the
    /// vCPU is not running: before Run, or paused.
    /// </summary>
    private T OnVcpuThread<T>(Func<IVcpu, T> f) => OnTaskThread(_leaderRunner, f);

    private void VcpuThread()
    {
        try
        {
            _vcpu = PlatformSelector.Create(_memory, Platform.Kind, _kernel.Mm.Paged);
            _leaderRunner.Vcpu = _vcpu;
            _kernel.AttachVcpu(_vcpu);
            _vcpu.SetLog(message => Log?.Invoke(message));
            ref var r = ref _vcpu.Regs;
            ulong cs = r.Cs, ss = r.Ss, ds = r.Ds;
            r = default;
            r.Cs = cs; r.Ss = ss; r.Ds = ds; r.Es = ds;
            r.Rip = _start.Entry;
            r.Rsp = _start.StackPointer;
            r.Eflags = 0x202;
            r.OrigRax = ulong.MaxValue;
        }
        catch (Exception e)
        {
            _startError = e is SandboxException ? e : new SandboxException($"cannot start the domain: {e.Message}", e);
            _ready.Set();
            return;
        }
        _ready.Set();
        int status;
        try
        {
            status = FinishLeader(RunLoop(_leaderRunner));
        }
        catch (SandboxException e)
        {
            Log?.Invoke($"domain stopped: {e.Message}");
            status = FinishLeader(137);
        }
        finally
        {
            _kernel.StopTimers();
            // The dirty log may be in use from another thread (it is safe while running): not while it goes.
            lock (_dirtyLogLock)
            {
                _vcpuGone = true;
                _vcpu.Dispose();
            }
        }
        lock (_lock)
        {
            ExitStatus = status;
            _state = DomainState.Exited;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>What the loop does after signals were acted on outside a system call: the exit status if one ended
    /// the program, else null (a stop pauses the domain first).</summary>
    private int? AfterSignals(SyscallOutcome outcome)
    {
        if (outcome == SyscallOutcome.Exit)
        {
            EndAll(kill: false);
            return _kernel.ExitStatus;
        }
        if (outcome == SyscallOutcome.Stop) StopSelf();
        return null;
    }

    /// <summary>The program stopped itself: paused from this boundary on (the loop's top waits).</summary>
    private void StopSelf()
    {
        lock (_lock)
        {
            _pauseRequested = true;
            _state = DomainState.Paused;
            InterruptAll(); // every thread stops
        }
        Log?.Invoke($"the program stopped itself (signal {_kernel.StopSignal}): the domain is paused until unpaused");
        Stopped?.Invoke(_kernel.StopSignal);
    }

    /// <summary>Runs the program until it exits; returns its exit status. Call once.</summary>
    public int Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lock)
        {
            if (_go) throw new InvalidOperationException("the domain is already running");
            _kernel.Mm.ForgetRestoreState(); // no restore comes once it runs
            _go = true;
            Monitor.PulseAll(_lock);
        }
        _thread.Join();
        return ExitStatus;
    }

    /// <summary>Stops the vCPU and returns once it is stopped (idempotent). Before Run, Run starts paused.</summary>
    public void Pause()
    {
        lock (_lock)
        {
            if (_state is DomainState.Exited || _pauseRequested) { WaitPaused(); return; }
            _pauseRequested = true;
            InterruptAll();
            WaitPaused();
        }
    }

    private void WaitPaused()
    {
        while (_state != DomainState.Exited && _pauseRequested && !AllParked()) Monitor.Wait(_lock);
    }

    /// <summary>Lets a paused vCPU go on (idempotent).</summary>
    public void Unpause()
    {
        lock (_lock)
        {
            _pauseRequested = false;
            RenewInterrupt();
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Ends the program as SIGKILL would (exit status 137); Run() returns soon after.</summary>
    public void Kill()
    {
        lock (_lock)
        {
            if (_state == DomainState.Exited) return;
            _killRequested = true;
            InterruptAll();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Kill();
        if (_thread.IsAlive) _thread.Join();
        DisconnectNetwork();
        _kernel.Fds.CloseAll();
        _kernel.Volumes.Dispose();
        _memory.Dispose();
        _ready.Dispose();
    }
}
