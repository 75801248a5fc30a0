namespace Remus.Sandbox.Kernel;

/// <summary>
/// ppoll, pselect6 and epoll_pwait(2) wait with the caller's signal mask replaced by the one given, as Linux's
/// set_user_sigmask/restore_saved_sigmask_unless do: when a signal interrupts the wait the saved mask stays saved,
/// so the handler runs with the wait's mask and its frame records the caller's (restored by rt_sigreturn); otherwise
/// the caller's mask is back when the call returns.
/// </summary>
internal sealed partial class SandboxKernel
{
    /// <summary>Runs <paramref name="wait"/> with the mask at <paramref name="sigmask"/> (0: the caller's own).</summary>
    private long WithSignalMask(ulong sigmask, Func<long> wait)
    {
        if (sigmask == 0) return wait();
        ulong mask = Memory.ReadU64(sigmask) & ~Unblockable;
        Task.SavedMask = Task.Blocked;
        Task.Blocked = mask;
        bool interrupted = false;
        try
        {
            return wait();
        }
        catch (SignalInterruptException)
        {
            interrupted = true; // delivery restores the saved mask (after the handler, through its frame)
            throw;
        }
        finally
        {
            if (!interrupted && Task.SavedMask is { } saved)
            {
                Task.Blocked = saved;
                Task.SavedMask = null;
            }
        }
    }
}
