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
        Platform = Platform,
        Network = Network?.ToSpec(),
        Volumes = VolumeSpecs,
    };
}
