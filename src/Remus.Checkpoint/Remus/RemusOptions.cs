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

    /// <summary>
    /// T, the backup's --timeout: how long the backup's reader may wait for bytes before the primary is declared
    /// lost. The backup sends it in its HELLO and the primary adopts the backup's value (this one is the backup's
    /// own, and the primary's only with a blackhole): the primary releases epoch N only if its ack came within
    /// T − <see cref="Margin"/> of CHECKPOINT_END N, and sends a heartbeat whenever it wrote nothing for T/4.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long the primary waits for the backup's HELLO (an ssh start can take seconds).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The shortest T that can work: heartbeats go every T/4 and the lease is T − max(T/10, 20 ms); below 100 ms
    /// the heartbeat period (25 ms) nears the scheduling delays of a loaded host and the lease shrinks to nothing.
    /// </summary>
    public static readonly TimeSpan MinTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The lease margin for a timeout T: max(T/10, 20 ms). The primary's lease on an epoch's output ends at
    /// T − margin after its CHECKPOINT_END was written, so it lapses at least a margin before the backup can have
    /// seen T of silence after its ack; the margin covers the difference between the two sides' timer wake-ups.
    /// </summary>
    public static TimeSpan Margin(TimeSpan timeout) => TimeSpan.FromTicks(Math.Max(timeout.Ticks / 10, TimeSpan.FromMilliseconds(20).Ticks));

    /// <summary>The heartbeat period for a timeout T: T/4 (three may be lost or late before the backup gives up).</summary>
    public static TimeSpan HeartbeatPeriod(TimeSpan timeout) => timeout / 4;

    /// <summary>
    /// Epochs a page the guest changed stays without write protection, found changed by comparison instead
    /// (<see cref="HotPages"/>); 0 tracks every page by protection alone.
    /// </summary>
    public int HotPageEpochs { get; init; } = 8;

    /// <summary>Most pages tracked by comparison (each keeps a 4 KiB copy on the primary: 32 MiB by default).</summary>
    public int HotPageLimit { get; init; } = 8192;

    /// <summary>
    /// Bytes of VOLUME_OPS after which an initial-synchronisation epoch is closed and the copy goes on in the next one
    /// (default 64 MiB): the backup buffers an epoch whole before applying it, never a whole volume.
    /// </summary>
    public long VolumeEpochBytes { get; init; } = 64L << 20;

    /// <summary>
    /// Most pages per initial-synchronisation epoch (default <see cref="Migration.PreCopy.DefaultEpochPages"/>: 16384, 64 MiB):
    /// each round of the copy travels as epochs of at most this many pages, so the backup buffers, applies and acks
    /// one bounded piece at a time instead of all of memory at once (issue 14).
    /// </summary>
    public int SyncEpochPages { get; init; } = Migration.PreCopy.DefaultEpochPages;

    /// <summary>
    /// The witness (issue 12; `--witness`): the primary takes the domain's key before protection and releases an epoch's
    /// output only while its lease is certainly valid; the backup takes over only after acquiring the key. Null: no
    /// witness (a two-way partition can split the domain; `protect` says so once).
    /// </summary>
    public Witness.IWitness? Witness { get; init; }

    /// <summary>The witness lease's TTL (`--witness-ttl`, default 1 s).</summary>
    public TimeSpan WitnessTtl { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a backup whose primary was declared lost keeps trying to take the witness key (every TTL/4) before it
    /// ends without a takeover. Null: 3 x <see cref="WitnessTtl"/> + <see cref="Timeout"/>.
    /// </summary>
    public TimeSpan? WitnessPatience { get; init; }

    /// <summary>The bound a backup tries the witness key for (<see cref="WitnessPatience"/> or its default).</summary>
    public TimeSpan WitnessBound => WitnessPatience ?? 3 * WitnessTtl + Timeout;

    /// <summary>
    /// The backup's stream-reader bounds (issue 13): a receiver sets <see cref="Stream.CheckpointReaderOptions.MaxVcpuStates"/>
    /// to its policy's vCPU limit. Unused by the primary.
    /// </summary>
    public Stream.CheckpointReaderOptions Reader { get; init; } = new();

    /// <summary>The domain's name and this copy's identity, as the witness's key and value carry them.</summary>
    public string DomainName { get; init; } = "";
    public Witness.WitnessHolder? Holder { get; init; }

    /// <summary>Most initial pre-copy rounds before the first checkpoint.</summary>
    public int MaxInitialRounds { get; init; } = 10;

    /// <summary>
    /// Called at each <see cref="RemusStep"/> with the epoch number, on the thread that reached it (null: nothing).
    /// For fault injection and tracing; an exception thrown here acts as a crash of that side at that point: it is
    /// wrapped in a <see cref="RemusCrashException"/>, and a crashed primary releases nothing more, writes nothing
    /// more and leaves its domain paused; a crashed backup's <see cref="RemusBackup.Watch"/> throws it (no outcome).
    /// </summary>
    public Action<RemusStep, ulong>? OnStep { get; init; }
}
