using System.Text.Json;
using System.Text.Json.Serialization;

namespace Remus.Toolstack;

/// <summary>What <c>remus list</c> shows, as the domain's VMM reports it.</summary>
public enum DomainRunState
{
    Running,
    Paused,
    /// <summary>The program has exited; its VMM is about to remove the domain.</summary>
    Exited,
    /// <summary>The VMM accepts connections but did not answer in time.</summary>
    Unknown,
}

/// <summary>One domain as its VMM (the single owner of its state) describes it.</summary>
public sealed record DomainInfo
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("id")] public required int Id { get; init; }
    /// <summary>The VMM process.</summary>
    [JsonPropertyName("pid")] public required int Pid { get; init; }
    [JsonPropertyName("state")] public required DomainRunState State { get; init; }
    /// <summary>Guest RAM in MiB.</summary>
    [JsonPropertyName("memory")] public required int Memory { get; init; }
    /// <summary>CPU seconds used by the domain's VMM (guest and "kernel"), like xl's Time(s).</summary>
    [JsonPropertyName("time")] public double Time { get; init; }
    [JsonPropertyName("program")] public string Program { get; init; } = "";
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
    /// <summary>Set once <see cref="State"/> is Exited.</summary>
    [JsonPropertyName("exit_status")] public int? ExitStatus { get; init; }
    /// <summary>The domain's volumes, the tmpfs at /tmp included (absent when it has none).</summary>
    [JsonPropertyName("volumes")] public List<VolumeInfo>? Volumes { get; init; }
    /// <summary>Remus protection (absent when the domain is not protected).</summary>
    [JsonPropertyName("remus")] public RemusDomainInfo? Remus { get; init; }

    /// <summary>A JSON array of domains, indented (what <c>remus list --json</c> prints).</summary>
    public static string ToJson(IEnumerable<DomainInfo> domains) =>
        JsonSerializer.Serialize(domains.ToList(), ToolstackJson.Indented.ListDomainInfo);

    /// <summary>Parses what <see cref="ToJson"/> wrote.</summary>
    public static List<DomainInfo> ListFromJson(string json) =>
        JsonSerializer.Deserialize(json, ToolstackJson.Default.ListDomainInfo) ?? [];
}

/// <summary>One volume of a domain, for `remus list`.</summary>
public sealed record VolumeInfo
{
    /// <summary>Where the program sees it.</summary>
    [JsonPropertyName("target")] public required string Target { get; init; }
    /// <summary>The host directory (absent for a tmpfs, which lives in the VMM's own memory-backed directory).</summary>
    [JsonPropertyName("host_path")] public string? HostPath { get; init; }
    [JsonPropertyName("tmpfs")] public bool Tmpfs { get; init; }
}

/// <summary>A protected domain's Remus figures, for `remus list --json`.</summary>
public sealed record RemusDomainInfo
{
    [JsonPropertyName("protected")] public bool Protected { get; init; }
    [JsonPropertyName("backup")] public string Backup { get; init; } = "";
    /// <summary>Why protection was lost, when it was.</summary>
    [JsonPropertyName("lost")] public string? Lost { get; init; }
    /// <summary>The witness's etcd URLs (comma-separated) when protection uses one.</summary>
    [JsonPropertyName("witness")] public string? Witness { get; init; }
    /// <summary>Another copy took the domain over (TAKEOVER, or the witness key held by it): this copy never runs again.</summary>
    [JsonPropertyName("fenced"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool Fenced { get; init; }
    [JsonPropertyName("epochs")] public long Epochs { get; init; }
    [JsonPropertyName("pause_p50_ms")] public double PauseP50Ms { get; init; }
    [JsonPropertyName("pause_p99_ms")] public double PauseP99Ms { get; init; }
    [JsonPropertyName("bytes_per_epoch")] public double BytesPerEpoch { get; init; }
    [JsonPropertyName("compression_ratio")] public double CompressionRatio { get; init; }
    [JsonPropertyName("ack_latency_ms")] public double AckLatencyMs { get; init; }
    /// <summary>Output commit on the wire (a domain with [network]): its frames held and released.</summary>
    [JsonPropertyName("net")] public RemusNetInfo? Net { get; init; }
}

/// <summary>
/// A protected domain's network output commit: frames (and bytes) held now, released and dropped (fenced) so far, and
/// the latency output commit added to released frames (from the stack sending one to its release), p50 and p99.
/// </summary>
public sealed record RemusNetInfo
{
    [JsonPropertyName("frames_held")] public long FramesHeld { get; init; }
    [JsonPropertyName("bytes_held")] public long BytesHeld { get; init; }
    [JsonPropertyName("frames_released")] public long FramesReleased { get; init; }
    [JsonPropertyName("bytes_released")] public long BytesReleased { get; init; }
    [JsonPropertyName("frames_dropped")] public long FramesDropped { get; init; }
    [JsonPropertyName("latency_p50_ms")] public double LatencyP50Ms { get; init; }
    [JsonPropertyName("latency_p99_ms")] public double LatencyP99Ms { get; init; }
}
