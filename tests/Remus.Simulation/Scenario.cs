using Remus.Checkpoint.Remus;

namespace Remus.Simulation;

/// <summary>The fault catalogue: one kind per run, its parameters drawn from the seed (<see cref="Scenario"/>).</summary>
public enum ScenarioKind
{
    /// <summary>No fault: protection runs until the harness stops it (END).</summary>
    Clean,
    /// <summary>No fault; the guest exits mid-epoch with final lines.</summary>
    GuestExits,
    /// <summary>The primary is killed (its connections close) at a step of a checkpoint epoch.</summary>
    PrimaryKilledAtStep,
    /// <summary>The primary loses power (its connections fall silent) at a step of a checkpoint epoch.</summary>
    PrimaryPoweredOffAtStep,
    /// <summary>The primary dies at a seeded byte of an epoch it is sending.</summary>
    PrimaryKilledMidSend,
    /// <summary>The primary dies during the initial synchronisation.</summary>
    PrimaryKilledDuringSync,
    /// <summary>The primary dies at a seeded moment.</summary>
    PrimaryKilledAtRandomTime,
    /// <summary>The guest exits; the primary dies right after its last line reached the world.</summary>
    PrimaryKilledAfterFinalRelease,
    /// <summary>The guest exits; the primary dies as it starts writing END.</summary>
    PrimaryKilledBeforeEndAtExit,
    /// <summary>The host ends protection (stop); the primary dies as it starts writing END, its held output already released.</summary>
    PrimaryKilledBeforeEndAtStop,
    /// <summary>The backup is killed at one of its steps.</summary>
    BackupKilledAtStep,
    /// <summary>The backup loses power at one of its steps.</summary>
    BackupPoweredOffAtStep,
    /// <summary>The backup dies during the initial synchronisation.</summary>
    BackupKilledDuringSync,
    /// <summary>The backup dies at a seeded moment.</summary>
    BackupKilledAtRandomTime,
    /// <summary>The primary stops (SIGSTOP) at a step for less than half the timeout.</summary>
    PrimaryStalledBriefly,
    /// <summary>The backup stops at a step for less than half the timeout.</summary>
    BackupStalledBriefly,
    /// <summary>The primary stops at a step for longer than the timeout, then goes on.</summary>
    PrimaryStalledPastTimeout,
    /// <summary>The backup stops at a step for longer than the timeout, then goes on.</summary>
    BackupStalledPastTimeout,
    /// <summary>The primary-to-backup direction holds its bytes for less than half the timeout, for a while.</summary>
    EpochsDelayedBriefly,
    /// <summary>The backup-to-primary direction (acks) holds its bytes for less than half the timeout, for a while.</summary>
    AcksDelayedBriefly,
    /// <summary>Epochs held longer than the timeout.</summary>
    EpochsDelayedPastTimeout,
    /// <summary>Acks held longer than the timeout.</summary>
    AcksDelayedPastTimeout,
    /// <summary>The primary-to-backup direction is cut silently (the primary's writes succeed).</summary>
    EpochsCut,
    /// <summary>The acks are lost: the backup-to-primary direction is cut silently.</summary>
    AcksCut,
    /// <summary>The primary-to-backup direction closes (the backup reads end of stream, the primary's writes fail).</summary>
    EpochStreamClosed,
    /// <summary>The ack direction closes.</summary>
    AckStreamClosed,
    /// <summary>The connection is reset in both directions.</summary>
    ConnectionReset,
    /// <summary>A byte of a record's body in a checkpoint epoch is flipped (the epoch's checksum must catch it).</summary>
    EpochCorrupted,
    /// <summary>A byte of a record's header (type or length) in a checkpoint epoch is flipped: the stream loses its framing.</summary>
    EpochRecordHeaderCorrupted,
    /// <summary>A byte of an ack is flipped.</summary>
    AckCorrupted,
    /// <summary>The checkpoint stream ends in the middle of an epoch.</summary>
    EpochTruncated,
    /// <summary>The checkpoint interval is longer than the timeout (no fault otherwise).</summary>
    IntervalLongerThanTimeout,
    /// <summary>Two crashes, brief stalls or delays, or a corrupt body, at most one of them a stall or a delay.</summary>
    TwoSurvivableFaults,
    /// <summary>Two faults of any kinds (not two exits); one breaking each direction is a two-way partition (<see cref="ScenarioSets.IsTwoWayPartition"/>).</summary>
    TwoFaults,
}

/// <summary>Timing of the runs: real time, small intervals.</summary>
public sealed record SimProfile(int IntervalMinMs, int IntervalMaxMs, int TimeoutMinMs, int TimeoutMaxMs)
{
    /// <summary>The brief's figures: interval 5-10 ms, timeout 100-200 ms (the benchmark).</summary>
    public static SimProfile Fast { get; } = new(5, 10, 100, 200);

    /// <summary>
    /// CI on a loaded shared machine: the same intervals, a timeout long enough that a thread descheduled for a
    /// while does not pass for a dead host (today's protocol turns such a false alarm into two copies, which a
    /// passing scenario must not be blamed for).
    /// </summary>
    public static SimProfile Ci { get; } = new(5, 10, 400, 600);
}

/// <summary>
/// One run's fault schedule: the kind and every parameter, drawn from the seed (the seed fixes the schedule, not
/// the threads' interleaving). Records, so a regression test can pin a parameter with <c>with</c>.
/// </summary>
public sealed record Scenario
{
    public required ScenarioKind Kind { get; init; }
    public required int Seed { get; init; }
    public required GuestConfig Guest { get; init; }
    public required TimeSpan Interval { get; init; }
    public required TimeSpan Timeout { get; init; }
    public int HotPageEpochs { get; init; }
    public bool Compress { get; init; } = true;
    /// <summary>The step a step fault hits (primary's or backup's by kind).</summary>
    public RemusStep Step { get; init; }
    /// <summary>The epoch a fault hits: checkpoints after the first (0 = the first checkpoint); for a sync fault, the round.</summary>
    public int Epoch { get; init; }
    public CrashKind Crash { get; init; }
    /// <summary>When a timed fault fires, from the moment protection started.</summary>
    public TimeSpan At { get; init; }
    /// <summary>How long a stall or a delay lasts (a delay: how long each byte is held).</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>How long a delay stays on.</summary>
    public TimeSpan Window { get; init; }
    /// <summary>The byte a stream fault hits, from the start of its epoch (or of its ack).</summary>
    public int Offset { get; init; }
    public byte Mask { get; init; } = 0xFF;
    /// <summary>The guest runs this long before protection starts.</summary>
    public TimeSpan HeadStart { get; init; }
    /// <summary>
    /// A closed direction (<see cref="ScenarioKind.EpochStreamClosed"/>, <see cref="ScenarioKind.AckStreamClosed"/>)
    /// closes the moment the primary has read the ACK of checkpoint first+<see cref="Epoch"/> (before it releases
    /// that checkpoint's output), not at the moment <see cref="At"/>.
    /// </summary>
    public bool ClosesAtPrimaryAck { get; init; }
    /// <summary>A combination's two faults (scenarios of single kinds sharing this one's guest and timing).</summary>
    public IReadOnlyList<Scenario>? Combined { get; init; }

    /// <summary>The faults to inject: this scenario's, or a combination's two.</summary>
    public IReadOnlyList<Scenario> Faults => Combined ?? [this];

    public static IReadOnlyList<ScenarioKind> AllKinds { get; } = Enum.GetValues<ScenarioKind>();

    /// <summary>The primary's steps of a checkpoint epoch (every step not the backup's and not the sync's; new ones included).</summary>
    public static IReadOnlyList<RemusStep> PrimarySteps { get; } =
        [.. Enum.GetValues<RemusStep>().Where(s => !s.ToString().StartsWith("Backup", StringComparison.Ordinal) && s != RemusStep.SyncRound)];

    public static IReadOnlyList<RemusStep> BackupSteps { get; } =
        [.. Enum.GetValues<RemusStep>().Where(s => s.ToString().StartsWith("Backup", StringComparison.Ordinal))];

    /// <summary>The scenario of <paramref name="seed"/>: its kind picked among <paramref name="kinds"/>, its parameters seeded.</summary>
    public static Scenario FromSeed(int seed, IReadOnlyList<ScenarioKind> kinds, SimProfile profile) =>
        Make(kinds[(int)(SimHash.Of((ulong)seed, 0x5CE9A) % (ulong)kinds.Count)], seed, profile);

    /// <summary>A scenario of the given kind with the parameters of <paramref name="seed"/>.</summary>
    public static Scenario Make(ScenarioKind kind, int seed, SimProfile profile)
    {
        if (kind is ScenarioKind.TwoSurvivableFaults or ScenarioKind.TwoFaults) return Combine(kind, seed, profile);
        var r = new Random(seed);
        // Every value is drawn whatever the kind, in a fixed order, so a parameter means the same for every kind.
        var interval = TimeSpan.FromMilliseconds(r.Next(profile.IntervalMinMs, profile.IntervalMaxMs + 1));
        var timeout = TimeSpan.FromMilliseconds(r.Next(profile.TimeoutMinMs, profile.TimeoutMaxMs + 1));
        var guest = new GuestConfig
        {
            Seed = SimHash.Of((ulong)seed, 0x6E57),
            Pages = r.Next(6, 97),
            DirtyPerStep = r.Next(0, 5),
            StepsPerTick = r.Next(1, 4),
            FinalLines = r.Next(1, 4),
        };
        long exitAt = 40 + r.Next(160);
        int hot = r.Next(3) switch { 0 => 0, 1 => 2, _ => 8 };
        bool compress = r.Next(4) != 0;
        var primaryStep = PrimarySteps[r.Next(PrimarySteps.Count)];
        var backupStep = BackupSteps[r.Next(BackupSteps.Count)];
        int epoch = r.Next(0, 6);
        var crash = r.Next(2) == 0 ? CrashKind.Kill : CrashKind.PowerOff;
        var at = interval * (1 + r.NextDouble() * 12);
        double brief = 0.1 + 0.3 * r.NextDouble(), past = 1.5 + r.NextDouble();
        var window = interval * r.Next(2, 9);
        int offset = r.Next(0, 700);
        byte mask = (byte)r.Next(1, 256);
        var headStart = TimeSpan.FromMilliseconds(r.Next(0, 6));
        int round = r.Next(0, 3);
        double slow = 1.2 + 0.8 * r.NextDouble();

        var s = new Scenario
        {
            Kind = kind, Seed = seed, Guest = guest, Interval = interval, Timeout = timeout, HotPageEpochs = hot, Compress = compress,
            Epoch = epoch, Crash = crash, At = at, Window = window, Offset = offset, Mask = mask, HeadStart = headStart,
        };
        return kind switch
        {
            ScenarioKind.GuestExits or ScenarioKind.PrimaryKilledAfterFinalRelease or ScenarioKind.PrimaryKilledBeforeEndAtExit =>
                s with { Guest = guest with { ExitAt = exitAt } },
            ScenarioKind.PrimaryKilledAtStep => s with { Step = primaryStep, Crash = CrashKind.Kill },
            ScenarioKind.PrimaryPoweredOffAtStep => s with { Step = primaryStep, Crash = CrashKind.PowerOff },
            ScenarioKind.PrimaryKilledMidSend => s with { Crash = CrashKind.Kill },
            // The simulated guests are small: their initial synchronisation is one round (round 0).
            ScenarioKind.PrimaryKilledDuringSync => s with { Step = RemusStep.SyncRound, Epoch = round % 1 },
            ScenarioKind.BackupKilledAtStep => s with { Step = backupStep, Crash = CrashKind.Kill },
            ScenarioKind.BackupPoweredOffAtStep => s with { Step = backupStep, Crash = CrashKind.PowerOff },
            ScenarioKind.BackupKilledDuringSync => s with { Step = RemusStep.BackupReceived, Epoch = round % 1 },
            ScenarioKind.PrimaryStalledBriefly => s with { Step = primaryStep, Duration = timeout * brief },
            ScenarioKind.BackupStalledBriefly => s with { Step = backupStep, Duration = timeout * brief },
            ScenarioKind.PrimaryStalledPastTimeout => s with { Step = primaryStep, Duration = timeout * past },
            ScenarioKind.BackupStalledPastTimeout => s with { Step = backupStep, Duration = timeout * past },
            ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly => s with { Duration = timeout * brief },
            ScenarioKind.EpochsDelayedPastTimeout or ScenarioKind.AcksDelayedPastTimeout => s with { Duration = timeout * past },
            ScenarioKind.IntervalLongerThanTimeout => s with { Interval = timeout * slow },
            _ => s,
        };
    }

    private static bool IsTiming(ScenarioKind k) => k is ScenarioKind.PrimaryStalledBriefly or ScenarioKind.BackupStalledBriefly
        or ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly or ScenarioKind.PrimaryStalledPastTimeout
        or ScenarioKind.BackupStalledPastTimeout or ScenarioKind.EpochsDelayedPastTimeout or ScenarioKind.AcksDelayedPastTimeout;

    private static bool Exits(ScenarioKind k) => k is ScenarioKind.GuestExits or ScenarioKind.PrimaryKilledAfterFinalRelease
        or ScenarioKind.PrimaryKilledBeforeEndAtExit;

    /// <summary>
    /// The kinds <see cref="ScenarioKind.TwoSurvivableFaults"/> combines: crashes, brief stalls and delays, a corrupt
    /// body (the faults protocol version 1 already survived alone; the list is fixed so a seed keeps its meaning).
    /// </summary>
    private static readonly ScenarioKind[] GentleFaults =
    [
        ScenarioKind.PrimaryKilledAtStep, ScenarioKind.PrimaryPoweredOffAtStep, ScenarioKind.PrimaryKilledMidSend,
        ScenarioKind.PrimaryKilledDuringSync, ScenarioKind.PrimaryKilledAtRandomTime, ScenarioKind.BackupKilledAtStep,
        ScenarioKind.BackupPoweredOffAtStep, ScenarioKind.BackupKilledDuringSync, ScenarioKind.BackupKilledAtRandomTime,
        ScenarioKind.PrimaryStalledBriefly, ScenarioKind.BackupStalledBriefly, ScenarioKind.EpochsDelayedBriefly,
        ScenarioKind.AcksDelayedBriefly, ScenarioKind.EpochCorrupted,
    ];

    /// <summary>
    /// Two faults in one run. Survivable: two of <see cref="GentleFaults"/> (no exit), at most one of them a stall
    /// or delay (two brief ones add up past the timeout). Any: two kinds but not two exits, nor two stalls or delays.
    /// </summary>
    private static Scenario Combine(ScenarioKind kind, int seed, SimProfile profile)
    {
        var atoms = kind == ScenarioKind.TwoSurvivableFaults
            ? GentleFaults.ToList()
            : AllKinds.Where(k => k is not (ScenarioKind.Clean or ScenarioKind.IntervalLongerThanTimeout
                or ScenarioKind.TwoSurvivableFaults or ScenarioKind.TwoFaults)).ToList();
        var r = new Random(seed ^ 0x2F4A);
        var a = atoms[r.Next(atoms.Count)];
        var rest = atoms.Where(k => k != a && !(IsTiming(a) && IsTiming(k)) && !(Exits(a) && Exits(k))).ToList();
        var b = rest[r.Next(rest.Count)];
        var first = Make(a, seed, profile);
        var second = Make(b, (int)(SimHash.Of((ulong)seed, 0xB) & 0x7FFFFFFF), profile) with
        {
            Guest = first.Guest, Interval = first.Interval, Timeout = first.Timeout, HotPageEpochs = first.HotPageEpochs,
            Compress = first.Compress, HeadStart = first.HeadStart,
        };
        long exitAt = Math.Max(first.Guest.ExitAt, Make(b, seed, profile).Guest.ExitAt);
        var guest = first.Guest with { ExitAt = exitAt };
        return first with
        {
            Kind = kind, Guest = guest,
            Combined = [first with { Guest = guest }, second with { Guest = guest }],
        };
    }

    /// <summary>Whether the fault is a step fault of the primary (true), of the backup (false), or not one (null).</summary>
    public bool? StepFaultOnPrimary => Kind switch
    {
        ScenarioKind.PrimaryKilledAtStep or ScenarioKind.PrimaryPoweredOffAtStep or ScenarioKind.PrimaryKilledDuringSync
            or ScenarioKind.PrimaryStalledBriefly or ScenarioKind.PrimaryStalledPastTimeout => true,
        ScenarioKind.BackupKilledAtStep or ScenarioKind.BackupPoweredOffAtStep or ScenarioKind.BackupKilledDuringSync
            or ScenarioKind.BackupStalledBriefly or ScenarioKind.BackupStalledPastTimeout => false,
        _ => null,
    };

    public bool IsStall => Kind is ScenarioKind.PrimaryStalledBriefly or ScenarioKind.PrimaryStalledPastTimeout
        or ScenarioKind.BackupStalledBriefly or ScenarioKind.BackupStalledPastTimeout;

    /// <summary>The step fault's epoch counts from the first checkpoint (false: an absolute sync round).</summary>
    public bool EpochIsRelative => Kind is not (ScenarioKind.PrimaryKilledDuringSync or ScenarioKind.BackupKilledDuringSync);

    private string Fault => Kind switch
    {
        ScenarioKind.Clean or ScenarioKind.GuestExits or ScenarioKind.PrimaryKilledAfterFinalRelease or ScenarioKind.PrimaryKilledBeforeEndAtExit
            or ScenarioKind.PrimaryKilledBeforeEndAtStop => "",
        ScenarioKind.PrimaryKilledDuringSync => $"round={Epoch}",
        ScenarioKind.BackupKilledDuringSync => $"epoch={Epoch} (sync)",
        ScenarioKind.PrimaryKilledAtStep or ScenarioKind.PrimaryPoweredOffAtStep or ScenarioKind.BackupKilledAtStep
            or ScenarioKind.BackupPoweredOffAtStep => $"step={Step} epoch=first+{Epoch}",
        ScenarioKind.PrimaryStalledBriefly or ScenarioKind.PrimaryStalledPastTimeout or ScenarioKind.BackupStalledBriefly
            or ScenarioKind.BackupStalledPastTimeout => $"step={Step} epoch=first+{Epoch} stall={Duration.TotalMilliseconds:F0}ms",
        ScenarioKind.PrimaryKilledMidSend or ScenarioKind.EpochCorrupted or ScenarioKind.EpochRecordHeaderCorrupted
            or ScenarioKind.EpochTruncated or ScenarioKind.AckCorrupted =>
            $"epoch=first+{Epoch} byte={Offset}" + (Kind is ScenarioKind.EpochCorrupted or ScenarioKind.EpochRecordHeaderCorrupted
                or ScenarioKind.AckCorrupted ? $" mask=0x{Mask:x2}" : ""),
        ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly or ScenarioKind.EpochsDelayedPastTimeout
            or ScenarioKind.AcksDelayedPastTimeout => $"at={At.TotalMilliseconds:F0}ms delay={Duration.TotalMilliseconds:F0}ms for {Window.TotalMilliseconds:F0}ms",
        ScenarioKind.IntervalLongerThanTimeout => "",
        ScenarioKind.EpochStreamClosed or ScenarioKind.AckStreamClosed when ClosesAtPrimaryAck => $"at the primary's Acked epoch=first+{Epoch}",
        _ => $"at={At.TotalMilliseconds:F0}ms",
    };

    public override string ToString()
    {
        if (Combined is { } two)
            return $"seed {Seed}: {Kind}({string.Join(" + ", two.Select(f => $"{f.Kind}({f.Fault})"))} interval={Interval.TotalMilliseconds:F0}ms " +
                   $"timeout={Timeout.TotalMilliseconds:F0}ms hot-page-epochs={HotPageEpochs}{(Compress ? "" : " uncompressed")}; guest {Guest})";
        string fault = Fault;
        return $"seed {Seed}: {Kind}({fault}{(fault.Length > 0 ? " " : "")}interval={Interval.TotalMilliseconds:F0}ms timeout={Timeout.TotalMilliseconds:F0}ms " +
               $"hot-page-epochs={HotPageEpochs}{(Compress ? "" : " uncompressed")}; guest {Guest})";
    }
}
