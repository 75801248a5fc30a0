namespace Remus.Checkpoint.Remus;

/// <summary>
/// The named points of the Remus protocol on each side, in the order they happen in an epoch. The engine reports
/// each to <see cref="RemusOptions.OnStep"/>: the fault-injection tests crash, stall or cut the channel there, and a
/// trace can follow an epoch through them. A hook that throws acts as a crash of that side at that point.
/// </summary>
public enum RemusStep
{
    // ---- primary ----
    /// <summary>An initial-synchronisation round was written.</summary>
    SyncRound,
    /// <summary>About to pause the guest for a checkpoint.</summary>
    BeforeSuspend,
    /// <summary>Paused; dirty pages, vCPU and kernel state staged, output epoch sealed; not yet resumed.</summary>
    Staged,
    /// <summary>The guest runs again (speculatively); nothing of the epoch sent yet.</summary>
    Resumed,
    /// <summary>The epoch's pages are written; its state and CHECKPOINT_END not yet.</summary>
    PagesSent,
    /// <summary>CHECKPOINT_END is written and flushed; the ack not yet read.</summary>
    EndSent,
    /// <summary>The backup's ack for the epoch has arrived; its output not yet released.</summary>
    Acked,
    /// <summary>The epoch's output was released to the outside world.</summary>
    Released,
    /// <summary>A heartbeat was written (between epochs or during the initial synchronisation), on the heartbeat thread.</summary>
    Heartbeat,
    /// <summary>The primary gave up on its backup and is about to tell it so (RELEASE); nothing held is released yet.</summary>
    GivingUp,
    /// <summary>RELEASE is written; the primary now waits up to T + margin for RELEASED or TAKEOVER.</summary>
    ReleaseSent,
    /// <summary>The primary read TAKEOVER: it drops its held output and stops its domain (never released).</summary>
    Fenced,
    /// <summary>The program exited: the EXIT epoch (exit status, last output) is written; its ack not yet read.</summary>
    ExitSent,
    /// <summary>After the EXIT epoch was acked and its output released: END is written (the backup discards).</summary>
    EndWritten,

    // ---- backup ----
    /// <summary>An epoch arrived whole and verified; not yet applied.</summary>
    BackupReceived,
    /// <summary>The epoch is applied (memory and state); not yet acked.</summary>
    BackupApplied,
    /// <summary>The ack for the epoch is written.</summary>
    BackupAcked,
    /// <summary>The backup decided to take over; TAKEOVER is not yet written, nothing re-emitted, nothing run.</summary>
    BackupTakingOver,
    /// <summary>TAKEOVER is written (best effort) on the back channel; the caller re-emits output and runs next.</summary>
    BackupTakeoverSent,
    /// <summary>The backup read RELEASE and discarded its copy; RELEASED not yet written.</summary>
    BackupReleased,
    /// <summary>The primary is lost: the backup is about to try to take the witness key (once per attempt).</summary>
    BackupWitnessTry,
    /// <summary>The witness key stayed with another copy past the bound: the backup discards its copy, no takeover.</summary>
    BackupDeclined,
}

/// <summary>
/// A <see cref="RemusOptions.OnStep"/> hook threw at <see cref="Step"/>: the side that reached it is crashed (fault
/// injection). The hook's exception is the inner exception.
/// </summary>
public sealed class RemusCrashException(RemusStep step, ulong epoch, Exception inner)
    : Exception($"crashed at {step} (epoch {epoch}): {inner.Message}", inner)
{
    public RemusStep Step { get; } = step;
    public ulong Epoch { get; } = epoch;

    /// <summary>Reports <paramref name="step"/> to the hook; a hook's exception becomes a crash.</summary>
    internal static void Report(RemusOptions options, RemusStep step, ulong epoch)
    {
        if (options.OnStep is not { } hook) return;
        try { hook(step, epoch); }
        catch (Exception e) { throw new RemusCrashException(step, epoch, e); }
    }
}
