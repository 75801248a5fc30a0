using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Tasks;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The program's threads and the kernel lock. Each thread runs on a host thread of its own (its vCPU's); system
/// calls of different threads are served one at a time under <see cref="KernelLock"/>, which the vCPU loop takes
/// around each call and each delivery of signals, and which a call gives up while it blocks (<see cref="Unlocked"/>:
/// readiness waits, futex, sleeps, pause), so guest code and blocked calls never hold up the other threads. The
/// thread being served is <see cref="Current"/> (its host thread's task); per-thread state is reached through it.
/// </summary>
internal sealed partial class SandboxKernel
{
    [ThreadStatic] private static GuestTask? t_current;

    private readonly List<GuestTask> _tasks = [];
    private volatile GuestTask[] _taskSnapshot = [];
    private GuestTask? _leader;
    private int _nextTid = Pid + 1;

    /// <summary>Taken around every system call and signal delivery (see the class remarks).</summary>
    public object KernelLock { get; } = new();

    /// <summary>The first thread (tid = pid = 1).</summary>
    public GuestTask Leader => _leader ??= AddTask(new GuestTask(this, Pid));

    /// <summary>The thread whose call is being served: the calling host thread's, else the leader.</summary>
    public GuestTask Current => t_current is { } t && t.Kernel == this ? t : Leader;

    /// <summary>Every thread still listed (live ones, and a leader that exited before the others), by tid.</summary>
    public IReadOnlyList<GuestTask> Tasks => _tasks;

    /// <summary>Threads that have not exited.</summary>
    public int LiveTasks => _tasks.Count(t => !t.Exited);

    /// <summary>How many vCPUs the program is offered (sched_getaffinity): the host's cores, as far as the platform goes.</summary>
    public int OfferedCpus => Math.Max(1, Math.Min(Environment.ProcessorCount, Leader.Vcpu?.MaxVcpus ?? 1));

    /// <summary>
    /// Raised (under the kernel lock, on the parent's host thread) when clone made a thread: the domain gives it a
    /// host thread, which attaches the seed and then calls <see cref="StartTask"/>.
    /// </summary>
    public Action<GuestTask, IVcpuSeed>? ThreadCreated { get; set; }

    /// <summary>The calling host thread serves <paramref name="task"/> from now on.</summary>
    public void BindThread(GuestTask task) => t_current = task;

    private GuestTask AddTask(GuestTask t)
    {
        _tasks.Add(t);
        _tasks.Sort((a, b) => a.Tid.CompareTo(b.Tid));
        _taskSnapshot = [.. _tasks];
        return t;
    }

    /// <summary>Forgets an exited thread (not the leader, which stays until the process ends).</summary>
    public void RemoveTask(GuestTask t)
    {
        lock (KernelLock)
        {
            if (t == _leader) return;
            _tasks.Remove(t);
            _taskSnapshot = [.. _tasks];
        }
    }

    public GuestTask? FindTask(int tid)
    {
        foreach (var t in _tasks) if (t.Tid == tid && !t.Exited) return t;
        return null;
    }

    /// <summary>Kicks every thread's vCPU (any host thread): each looks at its signals before running on.</summary>
    private void KickAll()
    {
        foreach (var t in _taskSnapshot) if (!t.Exited) t.Vcpu?.Kick();
    }

    /// <summary>A signal was sent that another thread may take: its wait ends to look, and a running one is kicked.</summary>
    private void WakeOthers()
    {
        lock (_wakeLock) _signalWake.Cancel();
        var self = t_current;
        foreach (var t in _taskSnapshot) if (!t.Exited && t != self) t.Vcpu?.Kick();
    }

    /// <summary>A read of a file without a queue; the console's input may take long, so it is read without the lock.</summary>
    private long ReadUnlockedIfSlow(FileDescription f, Span<byte> buffer, CancellationToken interrupt)
    {
        if (f is not ConsoleFile) return f.Read(buffer, interrupt);
        using (Unlocked()) return f.Read(buffer, interrupt);
    }

    /// <summary>
    /// Gives up the kernel lock for a blocking wait (if the calling thread holds it) and takes it back on Dispose:
    /// <c>using (Unlocked()) wait();</c>. Whatever the wait depends on must be registered before (a waiter on a
    /// queue, a futex waiter), so that nothing done meanwhile by another thread is missed.
    /// </summary>
    internal UnlockScope Unlocked() => new(KernelLock);

    internal readonly ref struct UnlockScope
    {
        private readonly object? _lock;

        public UnlockScope(object l)
        {
            if (!Monitor.IsEntered(l)) return;
            Monitor.Exit(l);
            _lock = l;
        }

        public void Dispose()
        {
            if (_lock != null) Monitor.Enter(_lock);
        }
    }
}
