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
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>The program's whole environment, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Env { get; init; } = [];

    /// <summary>Absolute host paths the program may read.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

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

    /// <summary>The domain's network interface ([network]); null: loopback only.</summary>
    public NetworkConfig? Network { get; init; }

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
    };
}
