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
    /// <summary>A heartbeat was written (between epochs or during the initial synchronisation).</summary>
    Heartbeat,
    /// <summary>The primary gave up on its backup and is about to tell it so.</summary>
    GivingUp,

    // ---- backup ----
    /// <summary>An epoch arrived whole and verified; not yet applied.</summary>
    BackupReceived,
    /// <summary>The epoch is applied (memory and state); not yet acked.</summary>
    BackupApplied,
    /// <summary>The ack for the epoch is written.</summary>
    BackupAcked,
}
