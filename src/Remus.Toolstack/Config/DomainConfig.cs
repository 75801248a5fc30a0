using System.Text.Json.Serialization;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Config;

/// <summary>
/// A domain's configuration, resolved: every path is absolute (relative paths in a config file are relative to the
/// file's folder). This is what a VMM receives from the CLI; <see cref="ConfigLoader"/> makes one from TOML.
/// </summary>
public sealed record DomainConfig
{
    public const int DefaultMemoryMiB = 128;

    /// <summary>The domain's name ([A-Za-z0-9_.-]+, see <see cref="DomainName"/>).</summary>
    public required string Name { get; init; }

    /// <summary>Guest RAM in MiB.</summary>
    public int MemoryMiB { get; init; } = DefaultMemoryMiB;

    /// <summary>Absolute host path of the static program.</summary>
    public required string Program { get; init; }

    /// <summary>argv[0] as the program sees it: the program path as the user wrote it (null: <see cref="Program"/>).</summary>
    public string? Argv0 { get; init; }

    /// <summary>argv[1..].</summary>
    public IReadOnlyList<string> Args { get => _args; init => _args = value ?? []; }

    private readonly IReadOnlyList<string> _args = [];

    /// <summary>The program's whole environment, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Env { get => _env; init => _env = value ?? []; }

    private readonly IReadOnlyList<KeyValuePair<string, string>> _env = [];

    /// <summary>Absolute host paths the program may read.</summary>
    public IReadOnlyList<string> Files { get => _files; init => _files = value ?? []; }

    private readonly IReadOnlyList<string> _files = [];

    /// <summary>Absolute path of a file that receives (appended) everything the program writes to stdout and stderr.</summary>
    public string? ConsoleLog { get; init; }

    /// <summary>The vCPU platform: auto (the default), kvm or ptrace (config key <c>platform</c>).</summary>
    public PlatformKind Platform { get; init; } = PlatformKind.Auto;

    /// <summary>
    /// Only in a checkpoint stream's configuration, where <see cref="Platform"/> names the platform the domain ran on
    /// (as streams always have): the domain's own platform setting when it forces one (kvm, ptrace), which a receiver
    /// honours; absent (auto), the receiver chooses as for any domain (REMUS_PLATFORM, else auto).
    /// </summary>
    public PlatformKind? PlatformSetting { get; init; }

    /// <summary>For a domain built from a checkpoint stream, the platform the checkpoint was taken on (its VMM log says
    /// so when it differs from the domain's own). Never written into a stream.</summary>
    public PlatformKind? SourcePlatform { get; init; }

    /// <summary>The witness's etcd client URLs (config key <c>witness</c>; issue 12): `protect` uses them without --witness.</summary>
    public IReadOnlyList<string>? Witness { get; init; }

    /// <summary>The domain's network interface ([network]); null: loopback only.</summary>
    public NetworkConfig? Network { get; init; }

    /// <summary>Writable host directories the program sees at guest paths ([[volume]]; docs/storage.md).</summary>
    public IReadOnlyList<VolumeConfig> Volumes { get => _volumes; init => _volumes = value ?? []; }

    private readonly IReadOnlyList<VolumeConfig> _volumes = [];

    /// <summary>
    /// A tmpfs at /tmp (config key <c>tmpfs</c>, default true): in memory, checkpointed and replicated with the domain.
    /// Not made when a volume is mounted at /tmp.
    /// </summary>
    [JsonIgnore]
    public bool Tmpfs { get; init; } = true;

    /// <summary>
    /// <see cref="Tmpfs"/> in JSON (checkpoint streams, the VMM's start request): absent, as in streams written before
    /// volumes, means true (the JSON source generator sets an absent init-only property to its type's default).
    /// </summary>
    [JsonInclude, JsonPropertyName("Tmpfs")]
    internal bool? TmpfsJson { get => Tmpfs; init => Tmpfs = value ?? true; }

    /// <summary>The domain's volumes as the sandbox gets them: <see cref="Volumes"/>, then the tmpfs if any.</summary>
    [JsonIgnore]
    public IReadOnlyList<Remus.Sandbox.Volumes.VolumeSpec> VolumeSpecs => VolumeConfig.ToSpecs(Volumes, Tmpfs);

    /// <summary>
    /// This configuration on a receiver given `--volumes DIR` (migrate-receive, restore): each volume's host
    /// directory becomes DIR/&lt;its target without the leading slash&gt;. Null <paramref name="directory"/>: unchanged
    /// (the sender's host paths, as on a separate host).
    /// </summary>
    public DomainConfig WithVolumesUnder(string? directory) =>
        directory is null ? this : this with { Volumes = Volumes.Select(v => v.Under(directory)).ToList() };

    /// <summary>
    /// Most fds open at once (config key <c>max_fds</c>, 8..1024): RLIMIT_NOFILE at start, EMFILE past it. Null: 1024,
    /// Linux's usual soft limit. Travels in checkpoint streams, so a receiver's copy has the same limit.
    /// </summary>
    public int? MaxFds { get; init; }

    /// <summary>Most threads at once (config key <c>max_threads</c>, 1..512): clone past it is EAGAIN. Null: the platform's vCPU limit.</summary>
    public int? MaxThreads { get; init; }

    /// <summary>
    /// Most output held while protected (config key <c>held_output_mib</c>, MiB, 1..1024; null: 16): console output
    /// and frames of epochs the backup has not acknowledged. A console write past it waits (back-pressure); a frame
    /// past it is dropped (packet loss). See OutputCommitConsole.
    /// </summary>
    public int? HeldOutputMiB { get; init; }

    public const int MinHeldOutputMiB = 1, MaxHeldOutputMiB = 1024;

    /// <summary>The bound on held output, in bytes.</summary>
    [JsonIgnore]
    public long HeldOutputBytes => (long)(HeldOutputMiB ?? 16) << 20;

    /// <summary>The first of the limits that is out of its range (as the end of a message), or null.</summary>
    public string? LimitsProblem() =>
        MaxFds is < DomainSpec.MinMaxFds or > DomainSpec.MaxMaxFds
            ? $"'max_fds' must be between {DomainSpec.MinMaxFds} and {DomainSpec.MaxMaxFds}, not {MaxFds}"
            : MaxThreads is < 1 or > DomainSpec.MaxMaxThreads
                ? $"'max_threads' must be between 1 and {DomainSpec.MaxMaxThreads}, not {MaxThreads}"
                : HeldOutputMiB is < MinHeldOutputMiB or > MaxHeldOutputMiB
                    ? $"'held_output_mib' must be between {MinHeldOutputMiB} and {MaxHeldOutputMiB} (MiB), not {HeldOutputMiB}"
                    : null;

    /// <summary>The config file this came from, if any (for messages).</summary>
    public string? SourcePath { get; init; }

    public DomainSpec ToSpec() => new()
    {
        ProgramPath = Program,
        Argv0 = Argv0 ?? Program,
        Args = Args,
        Env = Env,
        Files = Files,
        MemoryMiB = MemoryMiB,
        MaxFds = MaxFds ?? DomainSpec.DefaultMaxFds,
        MaxThreads = MaxThreads,
        Platform = Platform,
        Network = Network?.ToSpec(),
        Volumes = VolumeSpecs,
    };
}
