using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.SelfTest;
using Remus.Toolstack.Registry;

namespace Remus.Toolstack;

/// <summary>
/// What <c>remus info</c> reports (as <c>xl info</c>): the host, each vCPU platform with its self-test and measured
/// system call cost, what <c>auto</c> picks and why, the dirty log, the run directory, the version.
/// </summary>
public sealed record HostInfo
{
    [JsonPropertyName("host")] public required string Host { get; init; }
    [JsonPropertyName("release")] public required string Release { get; init; }
    [JsonPropertyName("kernel_version")] public required string KernelVersion { get; init; }
    [JsonPropertyName("machine")] public required string Machine { get; init; }
    [JsonPropertyName("cpu")] public required string Cpu { get; init; }
    [JsonPropertyName("nr_cpus")] public int Cpus { get; init; }
    [JsonPropertyName("total_memory_mib")] public long TotalMemoryMiB { get; init; }
    [JsonPropertyName("remus_version")] public required string Version { get; init; }
    [JsonPropertyName("run_directory")] public required string RunDirectory { get; init; }
    [JsonPropertyName("platforms")] public required List<PlatformInfo> Platforms { get; init; }
    /// <summary>What auto picks and why.</summary>
    [JsonPropertyName("auto")] public required PlatformPick Auto { get; init; }
    /// <summary>REMUS_PLATFORM as set in this environment (null: not set).</summary>
    [JsonPropertyName("remus_platform")] public string? RemusPlatform { get; init; }
    /// <summary>What a domain without a platform setting gets here (auto, or REMUS_PLATFORM's choice).</summary>
    [JsonPropertyName("default")] public required PlatformPick Default { get; init; }
    /// <summary>The dirty log of the default platform.</summary>
    [JsonPropertyName("dirty_log")] public string? DirtyLog { get; init; }

    /// <summary>Looks at this host; runs both platforms' self-tests (a few ms each, once per process).</summary>
    public static HostInfo Gather(RunDirectory runDirectory)
    {
        var platforms = new List<PlatformInfo>
        {
            PlatformInfo.From(PlatformSelection.KvmSelfTest, PlatformSelection.KvmAvailable(out _)),
            PlatformInfo.From(PlatformSelection.PtraceSelfTest, available: true),
        };
        var auto = PlatformSelection.Auto;
        PlatformPick pick;
        try
        {
            var chosen = PlatformSelection.Choose(PlatformKind.Auto);
            pick = new PlatformPick { Platform = chosen.Name, Reason = chosen.Reason };
        }
        catch (SandboxException e)
        {
            pick = new PlatformPick { Platform = null, Reason = e.Message };
        }
        string[] uname = [Read("/proc/sys/kernel/hostname"), Read("/proc/sys/kernel/osrelease"), Read("/proc/sys/kernel/version")];
        return new HostInfo
        {
            Host = uname[0],
            Release = uname[1],
            KernelVersion = uname[2],
            Machine = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
            {
                System.Runtime.InteropServices.Architecture.X64 => "x86_64",
                var other => other.ToString().ToLowerInvariant(),
            },
            Cpu = CpuModel(),
            Cpus = Environment.ProcessorCount,
            TotalMemoryMiB = MemTotalMiB(),
            Version = typeof(HostInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                      ?? typeof(HostInfo).Assembly.GetName().Version?.ToString() ?? "unknown",
            RunDirectory = runDirectory.Path,
            Platforms = platforms,
            Auto = new PlatformPick { Platform = auto.Name, Reason = auto.Reason },
            RemusPlatform = Environment.GetEnvironmentVariable(PlatformSelection.EnvironmentVariable) is { Length: > 0 } env ? env : null,
            Default = pick,
            DirtyLog = platforms.FirstOrDefault(p => p.Name == pick.Platform)?.DirtyLog,
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, ToolstackJson.Indented.HostInfo);

    public static HostInfo? FromJson(string json) => JsonSerializer.Deserialize(json, ToolstackJson.Default.HostInfo);

    private static string Read(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "unknown"; }
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is var colon and > 0)
                    return line[(colon + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return "unknown";
    }

    private static long MemTotalMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)
                    && long.TryParse(line["MemTotal:".Length..].Trim().Split(' ')[0], out long kib))
                    return kib / 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return 0;
    }
}

/// <summary>One vCPU platform as <c>remus info</c> shows it.</summary>
public sealed record PlatformInfo
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>The host offers it (for KVM: /dev/kvm with every capability needed).</summary>
    [JsonPropertyName("available")] public bool Available { get; init; }
    /// <summary>"passed", "failed", or "not run" (unavailable).</summary>
    [JsonPropertyName("self_test")] public required string SelfTest { get; init; }
    /// <summary>Why it failed or is unavailable.</summary>
    [JsonPropertyName("problem")] public string? Problem { get; init; }
    /// <summary>The measured system call round trip (µs); null when not measured.</summary>
    [JsonPropertyName("syscall_us")] public double? SyscallMicros { get; init; }
    /// <summary>What the self-test cost in all (ms), vCPU creation included.</summary>
    [JsonPropertyName("self_test_ms")] public double SelfTestMs { get; init; }
    /// <summary>The self-test found AVX usable in the guest and checked ymm registers too.</summary>
    [JsonPropertyName("avx")] public bool Avx { get; init; }
    [JsonPropertyName("dirty_log")] public string? DirtyLog { get; init; }

    internal static PlatformInfo From(SelfTestResult r, bool available) => new()
    {
        Name = PlatformSelection.NameOf(r.Platform),
        Available = available,
        SelfTest = !available ? "not run" : r.Passed ? "passed" : "failed",
        Problem = r.Passed ? null : r.Problem,
        SyscallMicros = double.IsFinite(r.SyscallMicros) ? Math.Round(r.SyscallMicros, 1) : null,
        SelfTestMs = Math.Round(r.ElapsedMs, 1),
        Avx = r.Avx,
        DirtyLog = r.Passed ? r.DirtyLog : null,
    };
}

/// <summary>A platform choice: the platform (null when none can be used) and why.</summary>
public sealed record PlatformPick
{
    [JsonPropertyName("platform")] public string? Platform { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
}
