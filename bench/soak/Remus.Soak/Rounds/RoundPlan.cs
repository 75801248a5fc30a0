using Remus.Sandbox.Platform;

namespace Remus.Soak.Rounds;

/// <summary>The fault a round injects.</summary>
internal enum FaultKind
{
    /// <summary>The primary VMM SIGKILLed.</summary>
    Kill,
    /// <summary>The primary VMM SIGSTOPped until the backup acted on its silence, then SIGKILLed while stopped.</summary>
    Stop,
    /// <summary>One direction of the channel stops carrying bytes (the relay stops reading it).</summary>
    Cut,
    /// <summary>The backup (its receiver, the VMM it would become) SIGKILLed.</summary>
    BackupKill,
}

/// <summary>When in the protection the fault comes.</summary>
internal enum Moment
{
    /// <summary>During the initial synchronisation: once the stream carried a seeded number of bytes.</summary>
    Sync,
    /// <summary>A few ms (0-4) after a checkpoint went through to the backup whole: while the backup verifies and applies it.</summary>
    Apply,
    /// <summary>A seeded delay (0-1.5 s) after `protect` returned.</summary>
    Protected,
}

/// <summary>
/// Everything a round does, drawn from its seed alone, so that `--replay SEED` repeats it: the fault and platform
/// come from the seed's low bits (seed mod 4 is the kind, seed / 4 mod 2 the platform), the rest from a
/// <see cref="Random"/> seeded with it.
/// </summary>
internal sealed record RoundPlan(int Seed, FaultKind Kind, PlatformKind Platform, Moment Moment, int Mib, bool Compress, int IntervalMs,
    int DelayMs, int AfterCheckpointMs, long SyncBytes, bool CutForward)
{
    /// <summary>The ticker's tick: a line every 2 ms.</summary>
    public const int TickMicros = 2000;

    public static readonly FaultKind[] Kinds = [FaultKind.Kill, FaultKind.Stop, FaultKind.Cut, FaultKind.BackupKill];
    public static readonly PlatformKind[] Platforms = [PlatformKind.Ptrace, PlatformKind.Kvm];

    /// <summary>
    /// How many lines the ticker prints: enough to be running well after any fault moment and a takeover, on a
    /// machine loaded enough that `protect` and the sync take seconds (the first runs, with 2000/1500, missed 5
    /// rounds in 100 on KVM for a program that had ended first).
    /// </summary>
    public int Count => Mib >= 16 ? 2500 : 3000;

    public static FaultKind KindOf(int seed) => Kinds[(int)((uint)seed % 4)];

    public static PlatformKind PlatformOf(int seed) => Platforms[(int)((uint)seed / 4 % 2)];

    public static RoundPlan From(int seed)
    {
        var r = new Random(seed);
        int m = r.Next(100);
        var moment = m < 25 ? Moment.Sync : m < 60 ? Moment.Apply : Moment.Protected;
        // Big epochs for the moments inside a transfer: 16 MiB dirtied every 8 ticks makes checkpoints of megabytes.
        int mib = moment == Moment.Protected ? (r.Next(2) == 0 ? 1 : 4) : (r.Next(2) == 0 ? 4 : 16);
        bool compress = r.Next(2) == 0;
        int interval = r.Next(2) == 0 ? 20 : 50;
        int delay = moment == Moment.Apply ? r.Next(100, 1200) : r.Next(0, 1500);
        int after = r.Next(0, 5);
        // Uncompressed, the sync carries about the touched memory; compressed (XOR+LZ4 of mostly zero pages), far less.
        long syncBytes = r.NextInt64(0, compress ? (mib << 20) / 8 : mib << 20);
        bool forward = r.Next(2) == 0;
        return new RoundPlan(seed, KindOf(seed), PlatformOf(seed), moment, mib, compress, interval, delay, after, syncBytes, forward);
    }

    public static string KindName(FaultKind k) => k switch
    {
        FaultKind.Kill => "kill",
        FaultKind.Stop => "stop",
        FaultKind.Cut => "cut",
        FaultKind.BackupKill => "backup-kill",
        _ => k.ToString(),
    };

    public static FaultKind? ParseKind(string s) => Kinds.Cast<FaultKind?>().FirstOrDefault(k => KindName(k!.Value) == s.Trim().ToLowerInvariant());

    public string Describe()
    {
        string fault = Kind == FaultKind.Cut ? $"cut {(CutForward ? "primary->backup" : "backup->primary")}" : KindName(Kind);
        string when = Moment switch
        {
            Moment.Sync => $"during the initial sync (after {SyncBytes / 1024} KiB of stream)",
            Moment.Apply => $"{AfterCheckpointMs} ms after a checkpoint went through, >= {DelayMs} ms into protection",
            _ => $"{DelayMs} ms into protection",
        };
        return $"{PlatformSelection.NameOf(Platform)}, {fault} {when}; ticker {Count} x {TickMicros / 1000} ms dirtying {Mib} MiB, -i {IntervalMs}{(Compress ? "" : " -u")}";
    }
}
