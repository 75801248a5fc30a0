using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>
/// Kicks a vCPU thread out of KVM_RUN from any other thread, the way QEMU does (SIG_IPI + KVM_SET_SIGNAL_MASK +
/// immediate_exit):
/// <list type="number">
/// <item>The vCPU thread calls <see cref="AttachCurrentThread"/> once: it blocks the kick signal in its own mask
/// (pthread_sigmask), records its pthread_t, and gives KVM_SET_SIGNAL_MASK its mask <em>without</em> the kick signal,
/// so the signal is deliverable only while the thread is inside KVM_RUN.</item>
/// <item><see cref="Kick"/> (any thread) sets kvm_run.immediate_exit = 1 — which covers a vCPU thread that is just
/// about to enter KVM_RUN — and then pthread_kill's the vCPU thread, which forces a thread already in the guest out
/// with EINTR (<see cref="KvmExitReason.Intr"/>).</item>
/// <item>After an Intr exit the vCPU thread calls <see cref="AcknowledgeKick"/>: it consumes the pending signal(s)
/// with a zero-timeout sigtimedwait and clears immediate_exit.</item>
/// </list>
/// Protocol for callers: set your own "pause requested" flag before <see cref="Kick"/>, and have the run loop check
/// that flag after every <see cref="AcknowledgeKick"/>; a kick that races with the acknowledgement may then be seen
/// as a spurious Intr exit, but is never lost.
/// <para>
/// Why the signal's disposition can stay SIG_DFL (whose action for a real-time signal is to kill the process): no
/// handler is ever installed and the default action never runs, because the signal is never delivered in the usual
/// sense. Outside KVM_RUN it is blocked in the thread's mask, so a kick that lands there stays pending. Inside
/// KVM_RUN the kernel swaps in the KVM_SET_SIGNAL_MASK mask and keeps the thread's original mask in
/// <c>current->real_blocked</c>; a kick then makes the thread "want" the signal and KVM_RUN leaves with EINTR, but
/// the kernel's fatal-signal shortcut (complete_signal) skips a signal that is in <c>real_blocked</c>, and KVM restores
/// the original mask before returning to user space, so when the thread next checks for signals the kick is blocked
/// again and simply stays pending until sigtimedwait takes it. The same reasoning is why the thread must never
/// unblock the signal while one is pending: <see cref="DetachCurrentThread"/> drains first.
/// </para>
/// <para>
/// The default signal is SIGRTMIN+6 (40 with glibc). glibc reserves the kernel's signals 32 and 33 and .NET itself uses
/// SIGRTMIN (34) to inject activations for the GC, so both are avoided.
/// </para>
/// </summary>
public sealed class VcpuKicker : IDisposable
{
    private readonly object _lock = new();
    private nuint _thread;
    private int _managedThreadId;
    private bool _attached;
    private SigSet _savedMask;

    /// <param name="vcpu">The vCPU to kick.</param>
    /// <param name="signal">The kick signal; 0 picks <see cref="DefaultSignal"/>.</param>
    public VcpuKicker(KvmVcpu vcpu, int signal = 0)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        if (signal == 0) signal = DefaultSignal;
        // 1..64 fit the kernel's 8-byte sigset; SIGKILL and SIGSTOP cannot be blocked; 32/33 belong to glibc.
        if (signal < 1 || signal > 64 || signal == 9 || signal == 19 || signal == 32 || signal == 33)
            throw new ArgumentOutOfRangeException(nameof(signal), signal, "not a usable kick signal");
        Vcpu = vcpu;
        Signal = signal;
    }

    /// <summary>SIGRTMIN+6 as the C library defines SIGRTMIN (40 with glibc).</summary>
    public static int DefaultSignal { get; } = ComputeDefaultSignal();

    private static int ComputeDefaultSignal()
    {
        try
        {
            return Libc.__libc_current_sigrtmin() + 6;
        }
        catch (EntryPointNotFoundException)
        {
            return 34 + 6;
        }
    }

    public KvmVcpu Vcpu { get; }

    /// <summary>The signal number used for kicks.</summary>
    public int Signal { get; }

    /// <summary>True between <see cref="AttachCurrentThread"/> and <see cref="DetachCurrentThread"/>.</summary>
    public bool IsAttached
    {
        get { lock (_lock) return _attached; }
    }

    /// <summary>
    /// Called once on the vCPU thread before it first runs the vCPU: blocks <see cref="Signal"/> in this thread's mask,
    /// records the thread, and sets the vCPU's KVM_SET_SIGNAL_MASK to this thread's mask without the signal.
    /// </summary>
    public void AttachCurrentThread()
    {
        lock (_lock)
        {
            if (_attached) throw new InvalidOperationException("the kicker is already attached to a thread");
            SigSet old = SignalOps.BlockOnCurrentThread(Signal);
            try
            {
                // The mask inside KVM_RUN: everything this thread blocks, except the kick signal.
                SigSet inside = old;
                inside.Remove(Signal);
                Vcpu.SetSignalMask(inside.KernelMask);
            }
            catch
            {
                SignalOps.SetCurrentMask(old);
                throw;
            }
            _savedMask = old;
            _thread = SignalOps.CurrentThread();
            _managedThreadId = Environment.CurrentManagedThreadId;
            _attached = true;
        }
    }

    /// <summary>
    /// From any thread: makes the vCPU leave KVM_RUN (or not enter it) with <see cref="KvmExitReason.Intr"/>. Returns
    /// false when no thread is attached (immediate_exit is still set, so the next KVM_RUN returns at once) or the
    /// vCPU is disposed.
    /// </summary>
    public bool Kick()
    {
        lock (_lock)
        {
            if (!Vcpu.TrySetImmediateExit()) return false;
            if (!_attached) return false;
            SignalOps.Send(_thread, Signal);
            return true;
        }
    }

    /// <summary>
    /// On the vCPU thread, after an <see cref="KvmExitReason.Intr"/> exit: consumes every pending kick signal
    /// (sigtimedwait with a zero timeout; real-time signals queue, so several kicks leave several instances) and clears
    /// immediate_exit. Returns the number of signals consumed (0 for an exit caused by immediate_exit alone or by
    /// another signal).
    /// </summary>
    public int AcknowledgeKick()
    {
        int consumed = 0;
        lock (_lock)
        {
            if (_attached)
            {
                CheckOwnerThread();
                consumed = SignalOps.DrainPending(Signal);
            }
        }
        // Cleared after draining: a kick that lands between the two leaves its signal pending (the next KVM_RUN
        // returns at once) or is seen through the caller's own flag; either way it is not lost.
        Vcpu.ImmediateExit = false;
        return consumed;
    }

    /// <summary>
    /// On the vCPU thread, when it stops running the vCPU: no more kicks are sent, pending ones are consumed, the
    /// thread's signal mask is restored and the vCPU's KVM_SET_SIGNAL_MASK cleared.
    /// </summary>
    public void DetachCurrentThread()
    {
        lock (_lock)
        {
            if (!_attached) return;
            CheckOwnerThread();
            _attached = false;
            SignalOps.DrainPending(Signal);
            SignalOps.SetCurrentMask(_savedMask);
            if (!Vcpu.IsDisposed) Vcpu.ClearSignalMask();
        }
    }

    private void CheckOwnerThread()
    {
        if (_managedThreadId != Environment.CurrentManagedThreadId || !_attached)
            throw new InvalidOperationException("only the attached vCPU thread may do this");
    }

    /// <summary>Stops kicks. On the attached thread this is <see cref="DetachCurrentThread"/>; on another thread the vCPU
    /// thread's mask is left as is (the signal stays blocked there, which is harmless).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (!_attached) return;
            if (_managedThreadId == Environment.CurrentManagedThreadId) DetachCurrentThread();
            else _attached = false;
        }
    }
}
