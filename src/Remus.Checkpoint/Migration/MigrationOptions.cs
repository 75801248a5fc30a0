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

    /// <summary>How long to wait for the target's answers (acks, the final confirmation).</summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>One step of a migration, for progress displays.</summary>
public readonly record struct MigrationProgress(int Round, long PagesSent, long BytesSent, long PagesThisRound, long DirtyPages, bool StopAndCopy);

/// <summary>The outcome of a successful migration.</summary>
public sealed record MigrationResult(int Rounds, long PagesSent, long BytesSent, TimeSpan Total, TimeSpan Downtime);
