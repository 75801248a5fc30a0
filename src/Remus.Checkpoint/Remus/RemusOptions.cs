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

    /// <summary>Most initial pre-copy rounds before the first checkpoint.</summary>
    public int MaxInitialRounds { get; init; } = 10;
}
