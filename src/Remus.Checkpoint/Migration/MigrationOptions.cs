namespace Remus.Checkpoint.Migration;

/// <summary>How a live migration converges.</summary>
public sealed record MigrationOptions
{
    /// <summary>Compress pages (XOR delta + LZ4, DESIGN.md §4). Off with -u.</summary>
    public bool Compress { get; init; } = true;

    /// <summary>Most pre-copy rounds after the first full pass before stop-and-copy.</summary>
    public int MaxRounds { get; init; } = 30;

    /// <summary>Stop and copy once a round leaves no more than this many dirty pages (the downtime budget).</summary>
    public int StopCopyPages { get; init; } = 256;

    /// <summary>
    /// How long to wait for each of the target's answers (an epoch's ack after the previous one, the final confirmation).
    /// </summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most pages per epoch of the stream (<see cref="PreCopy.DefaultEpochPages"/>: 16384, 64 MiB): a pre-copy round,
    /// and the paused last round, travel as several epochs of at most this many pages, so that the target's buffer
    /// for one epoch stays bounded and it applies and acks while the next one travels.
    /// </summary>
    public int EpochPages { get; init; } = PreCopy.DefaultEpochPages;
}

/// <summary>
/// One step of a migration (or of a Remus initial synchronisation), for progress displays: the end of a round, or
/// (<see cref="Partial"/>) an epoch closed in the middle of one. <see cref="PagesSent"/> and <see cref="BytesSent"/>
/// count from the start; <see cref="PagesThisRound"/> is the round's whole size, <see cref="RoundPagesSent"/> how
/// much of it is sent; <see cref="DirtyPages"/> (the next round's size) is known only at the end of a round.
/// </summary>
public readonly record struct MigrationProgress(int Round, long PagesSent, long BytesSent, long PagesThisRound, long DirtyPages, bool StopAndCopy)
{
    /// <summary>The epoch just closed (the round's last one, at the end of a round).</summary>
    public ulong Epoch { get; init; }

    /// <summary>Pages of this round sent so far (<see cref="PagesThisRound"/> at the end of the round).</summary>
    public long RoundPagesSent { get; init; }

    /// <summary>An epoch closed in the middle of a round: <see cref="DirtyPages"/> is not known yet (0).</summary>
    public bool Partial { get; init; }

    /// <summary>Time since the copy began (the dirty log started).</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Stream bytes per second since the copy began (0 before any time passed).</summary>
    public double BytesPerSecond => Elapsed > TimeSpan.Zero ? BytesSent / Elapsed.TotalSeconds : 0;
}

/// <summary>The outcome of a successful migration.</summary>
public sealed record MigrationResult(int Rounds, long PagesSent, long BytesSent, TimeSpan Total, TimeSpan Downtime);
