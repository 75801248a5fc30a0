namespace Remus.Checkpoint.Remus;

/// <summary>The options of `remus protect`, with the seed's defaults (libxl_domain_remus_info).</summary>
public sealed record RemusOptions
{
    /// <summary>Checkpoint interval (-i, ms; the seed's default is 200).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Compress checkpoints (XOR delta + LZ4); -u turns it off.</summary>
    public bool Compress { get; init; } = true;

    /// <summary>-b: checkpoints go to /dev/null and output is released when the write completes.</summary>
    public bool Blackhole { get; init; }

    /// <summary>How long the primary waits for an ack, and the backup for the next epoch or heartbeat (--timeout).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Epochs a page the guest changed stays without write protection, found changed by comparison instead
    /// (<see cref="HotPages"/>); 0 tracks every page by protection alone.
    /// </summary>
    public int HotPageEpochs { get; init; } = 8;

    /// <summary>Most pages tracked by comparison (each keeps a 4 KiB copy on the primary: 32 MiB by default).</summary>
    public int HotPageLimit { get; init; } = 8192;

    /// <summary>Most initial pre-copy rounds before the first checkpoint.</summary>
    public int MaxInitialRounds { get; init; } = 10;

    /// <summary>
    /// Called at each <see cref="RemusStep"/> with the epoch number, on the thread that reached it (null: nothing).
    /// For fault injection and tracing; an exception thrown here acts as a crash of that side at that point.
    /// </summary>
    public Action<RemusStep, ulong>? OnStep { get; init; }
}
