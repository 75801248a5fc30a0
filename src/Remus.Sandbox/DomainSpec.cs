namespace Remus.Sandbox;

/// <summary>What a domain runs: one static Linux x86-64 program and what it may see.</summary>
public sealed record DomainSpec
{
    /// <summary>Host path of the static ELF program.</summary>
    public required string ProgramPath { get; init; }

    /// <summary>argv[0] as the program sees it (defaults to <see cref="ProgramPath"/>).</summary>
    public string? Argv0 { get; init; }

    /// <summary>argv[1..].</summary>
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>The environment, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Env { get; init; } = [];

    /// <summary>Host paths (files or directories) the program may open read-only. Nothing else is visible.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>Guest RAM in MiB.</summary>
    public int MemoryMiB { get; init; } = 128;

    /// <summary>The domain's network interface (a tap); null: loopback only.</summary>
    public Remus.Sandbox.Net.NetworkSpec? Network { get; init; }

    /// <summary>Writable host directories mounted at guest paths, replicated with the checkpoint (issue 10).</summary>
    public IReadOnlyList<Remus.Sandbox.Volumes.VolumeSpec> Volumes { get; init; } = [];

    /// <summary>How the vCPU runs (KVM or ptrace); Auto lets <see cref="Remus.Sandbox.Platform.PlatformSelection"/> choose.</summary>
    public Remus.Sandbox.Platform.PlatformKind Platform { get; init; } = Remus.Sandbox.Platform.PlatformKind.Auto;

    /// <summary>
    /// Most fds the program may have open: RLIMIT_NOFILE's soft and hard limit at start (config key <c>max_fds</c>;
    /// Linux's usual soft limit, 1024, by default). An open, dup, socket or pipe past it fails with EMFILE.
    /// </summary>
    public int MaxFds { get; init; } = DefaultMaxFds;

    /// <summary>
    /// Most threads the program may have at once, its first included (config key <c>max_threads</c>); a clone past it
    /// fails with EAGAIN, as Linux's does past RLIMIT_NPROC. Null: as many as the platform offers vCPUs (64 on KVM,
    /// 512 on ptrace).
    /// </summary>
    public int? MaxThreads { get; init; }

    public const int DefaultMaxFds = 1024, MinMaxFds = 8, MaxMaxFds = 1024;
    public const int MaxMaxThreads = 512;

    public const int MinMemoryMiB = 4;
    public const int MaxMemoryMiB = 65536;
}
