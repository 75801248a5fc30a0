using Remus.Sandbox.Kernel;
using Remus.Sandbox.Kernel.Tasks;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox;

/// <summary>
/// The program's threads, each on a host thread of its own that runs its vCPU (<see cref="TaskRunner"/>): the first
/// is the domain's vcpu0 thread; clone starts the others (<see cref="StartThread"/>). Every runner loops: at the top
/// it parks while the domain is paused (serving work that must run on its vCPU thread, such as register reads for a
/// checkpoint), then runs its vCPU and has the kernel serve what stopped it, under the kernel lock. Pause cancels the
/// interrupt token (a blocked call gives way and restarts later) and kicks every vCPU; the domain is paused once
/// every runner is parked. exit_group, a fatal signal or Kill end every runner; a thread's exit ends its own (the
/// first thread's runner stays, parked, until the process ends: its vCPU is the stub every other one belongs to).
/// </summary>
public sealed partial class SandboxDomain
{
    /// <summary>RunLoop's result when the thread itself exited (exit with other threads left).</summary>
    private const int ThreadExited = int.MinValue;

    private sealed class TaskRunner(GuestTask task)
    {
        public GuestTask Task { get; } = task;
        public IVcpu? Vcpu { get; set; }
        public Queue<Action> Work { get; } = new();
        /// <summary>Waiting at the top of its loop (work may run on it).</summary>
        public bool Parked { get; set; }
        /// <summary>Its loop ended and its vCPU is gone (or going).</summary>
        public bool Done { get; set; }
        /// <summary>Its vCPU is attached and set up (a new thread's, before its first run).</summary>
        public bool Ready { get; set; }
        /// <summary>Told to end without running (a restored checkpoint no longer has its thread).</summary>
        public bool Quit { get; set; }
    }

    private readonly List<TaskRunner> _runners = [];
    private readonly TaskRunner _leaderRunner;
    private bool _groupExit;

    private bool AllParked()
    {
        if (_leaderRunner.Done) return false; // the process is ending: not paused, about to be Exited
        if (_netBusy != 0) return false;      // the network threads are inside the stack (SandboxDomain.Network.cs)
        foreach (var r in _runners) if (!r.Done && !r.Parked) return false;
        return true;
    }

    /// <summary>Under the lock: blocked calls give way, every vCPU comes back to its loop.</summary>
    private void InterruptAll()
    {
        _interrupt.Cancel();
        foreach (var r in _runners) if (!r.Done) r.Vcpu?.Kick();
        Monitor.PulseAll(_lock);
    }

    /// <summary>Under the lock: a fresh interrupt token for the calls after a pause.</summary>
    private void RenewInterrupt()
    {
        if (!_interrupt.IsCancellationRequested || _killRequested || _groupExit) return;
        _interrupt = new CancellationTokenSource();
        _kernel.Interrupt = _interrupt.Token;
    }

    /// <summary>The process ends (exit_group, a fatal signal: <paramref name="kill"/> false) or is killed.</summary>
    private void EndAll(bool kill)
    {
        lock (_lock)
        {
            if (kill) _killRequested = true;
            else _groupExit = true;
            InterruptAll();
        }
    }

    /// <summary>Under the lock: waits while <paramref name="keepWaiting"/> holds, serving the runner's work.</summary>
    private void Park(TaskRunner me, Func<bool> keepWaiting)
    {
        me.Parked = true;
        if (_pauseRequested && _state == DomainState.Running && AllParked()) _state = DomainState.Paused;
        Monitor.PulseAll(_lock);
        while (true)
        {
            while (me.Work.Count > 0)
            {
                // Outside the lock, so that several runners serve their work at once (the domain is paused: nothing
                // else runs the program meanwhile); the runner stays parked throughout.
                var work = me.Work.Dequeue();
                Monitor.Exit(_lock);
                try { work(); }
                finally { Monitor.Enter(_lock); }
                Monitor.PulseAll(_lock);
            }
            if (!keepWaiting()) break;
            Monitor.Wait(_lock);
        }
        me.Parked = false;
    }

    /// <summary>
    /// Runs <paramref name="f"/> on <paramref name="runner"/>'s host thread while its vCPU is not running (before Run,
    /// or paused; a runner still on its way to park is waited for).
    /// </summary>
    private T OnTaskThread<T>(TaskRunner runner, Func<IVcpu, T> f) => OnTaskThreads([runner], f)[0];

    /// <summary>
    /// <see cref="OnTaskThread"/> on several runners at once: the work is queued to each, and each runs it on its own
    /// host thread in parallel (a checkpoint's register reads cost one round trip, not one per thread).
    /// </summary>
    private T[] OnTaskThreads<T>(IReadOnlyList<TaskRunner> runners, Func<IVcpu, T> f)
    {
        var results = new T[runners.Count];
        var errors = new Exception?[runners.Count];
        var done = new bool[runners.Count];
        lock (_lock)
        {
            foreach (var runner in runners)
                while (!runner.Parked && !runner.Done && _state != DomainState.Exited)
                {
                    if (!_pauseRequested && _state == DomainState.Running) throw new InvalidOperationException("pause the domain first");
                    Monitor.Wait(_lock);
                }
            for (int i = 0; i < runners.Count; i++)
            {
                var runner = runners[i];
                if (runner.Done || _state == DomainState.Exited) throw new InvalidOperationException("the domain has exited");
                int at = i;
                runner.Work.Enqueue(() =>
                {
                    try { results[at] = f(runner.Vcpu!); }
                    catch (Exception e) { errors[at] = e; }
                    done[at] = true;
                });
            }
            Monitor.PulseAll(_lock);
            for (int i = 0; i < runners.Count; i++)
            {
                while (!done[i] && !runners[i].Done && _state != DomainState.Exited) Monitor.Wait(_lock);
                if (!done[i]) throw new InvalidOperationException("the domain has exited");
            }
        }
        foreach (var error in errors)
            if (error != null) throw error is SandboxException or InvalidOperationException ? error : new SandboxException(error.Message, error);
        return results;
    }

    /// <summary>The runners of the threads a checkpoint carries, in the kernel's order (the leader first).</summary>
    private List<TaskRunner> CheckpointedRunners()
    {
        var tasks = _kernel.CheckpointedTasks();
        lock (_lock)
        {
            // A pause returns at once when the process is ending (its leader's loop is done): there is nothing left to
            // checkpoint, and the caller hears that, not that some thread lacks a vCPU.
            if (_leaderRunner.Done || _state == DomainState.Exited) throw new InvalidOperationException("the domain has exited");
            return tasks.Select(t => _runners.FirstOrDefault(r => r.Task == t && !r.Done)
                ?? throw new InvalidOperationException($"{t} has no vCPU")).ToList();
        }
    }

    /// <summary>clone made a thread (under the kernel lock, on the parent's host thread): its host thread starts.</summary>
    private void StartThread(GuestTask task, IVcpuSeed seed) => StartThread(task, seed, null);

    private TaskRunner StartThread(GuestTask task, IVcpuSeed seed, Action<IVcpu>? setUp)
    {
        var runner = new TaskRunner(task);
        lock (_lock) _runners.Add(runner);
        var thread = new Thread(() => ThreadMain(runner, seed, setUp)) { Name = $"vcpu-t{task.Tid}", IsBackground = true };
        thread.Start();
        return runner;
    }

    private void ThreadMain(TaskRunner me, IVcpuSeed seed, Action<IVcpu>? setUp)
    {
        IVcpu? attached = null;
        IVcpu vcpu;
        try
        {
            vcpu = attached = seed.Attach();
            lock (_kernel.KernelLock) _kernel.StartTask(me.Task, vcpu);
            setUp?.Invoke(vcpu);
        }
        catch (Exception e)
        {
            seed.Dispose();
            attached?.Dispose();
            Log?.Invoke($"domain stopped: cannot start {me.Task}: {e.Message}");
            _kernel.RemoveTask(me.Task);
            lock (_lock) me.Done = true;
            EndAll(kill: true);
            return;
        }
        lock (_lock)
        {
            me.Vcpu = vcpu;
            me.Ready = true;
            Monitor.PulseAll(_lock);
        }
        try
        {
            RunLoop(me);
        }
        catch (SandboxException e)
        {
            Log?.Invoke($"domain stopped: {me.Task}: {e.Message}");
            EndAll(kill: true);
        }
        finally
        {
            lock (_kernel.KernelLock) me.Task.Vcpu = null;
            _kernel.RemoveTask(me.Task);
            lock (_lock)
            {
                me.Done = true;
                me.Vcpu = null;
                _runners.Remove(me);
                if (_pauseRequested && _state == DomainState.Running && AllParked()) _state = DomainState.Paused;
                Monitor.PulseAll(_lock);
            }
            vcpu.Dispose();
        }
    }

    /// <summary>
    /// The first thread's runner after its loop: if the thread exited alone it stays parked (serving work) until the
    /// process ends; then every other runner is waited for, before the stub they share goes with this vCPU.
    /// </summary>
    private int FinishLeader(int status)
    {
        lock (_lock)
        {
            if (status == ThreadExited)
            {
                Park(_leaderRunner, () => !_killRequested && !_groupExit);
                status = _killRequested ? 137 : _kernel.ExitStatus;
            }
            if (!_killRequested && !_groupExit) _killRequested = true;
            InterruptAll();
            _leaderRunner.Done = true;
            while (_runners.Any(r => r != _leaderRunner && !r.Done)) Monitor.Wait(_lock);
        }
        return status;
    }

    private int RunLoop(TaskRunner me)
    {
        var vcpu = me.Vcpu!;
        while (true)
        {
            lock (_lock)
            {
                if (_killRequested) return 137;
                if (_groupExit) return _kernel.ExitStatus;
                if (me.Quit) return ThreadExited;
                if (_pauseRequested || !_go)
                {
                    Park(me, () => (_pauseRequested || !_go) && !_killRequested && !_groupExit && !me.Quit);
                    continue;
                }
                if (_state is DomainState.Paused or DomainState.Created)
                {
                    _state = DomainState.Running; // unpaused (or a stop continued before this loop came round)
                    Monitor.PulseAll(_lock);
                }
            }
            var exit = vcpu.Run();
            SyscallOutcome outcome;
            ulong rip = vcpu.Regs.Rip;
            lock (_kernel.KernelLock)
            {
                switch (exit.Kind)
                {
                    case VcpuExitKind.Syscall:
                        outcome = _kernel.Dispatch(ref vcpu.Regs);
                        if (outcome == SyscallOutcome.Restart)
                        {
                            vcpu.Regs.Rip -= 2; // back onto the syscall instruction
                            vcpu.Regs.Rax = vcpu.Regs.OrigRax;
                        }
                        break;
                    case VcpuExitKind.Fault:
                        // A demand fault now backed: on at the faulting instruction. Else the signal, settled.
                        outcome = _kernel.TryDemandFault(ref exit) ? SyscallOutcome.Return : _kernel.DeliverFault(ref vcpu.Regs, exit);
                        break;
                    case VcpuExitKind.Kicked:
                        outcome = _kernel.DeliverSignals(ref vcpu.Regs, afterSyscall: false);
                        break;
                    default:
                        outcome = SyscallOutcome.Return;
                        break;
                }
            }
            if (exit.Kind == VcpuExitKind.Fault && outcome == SyscallOutcome.Exit)
                Log?.Invoke(_kernel.ExitStatus - 128 == exit.Signal
                    ? $"program killed by signal {exit.Signal} at rip 0x{rip:x} (address 0x{exit.FaultAddress:x})"
                    : $"program killed by signal {_kernel.ExitStatus - 128} while taking signal {exit.Signal} at rip 0x{rip:x} (address 0x{exit.FaultAddress:x})");
            if (outcome == SyscallOutcome.ThreadExit) return ThreadExited;
            if (AfterSignals(outcome) is { } status) return status;
        }
    }
}
