using System.Text.Json.Serialization;
using Remus.Toolstack.Config;

namespace Remus.Toolstack.Vmm;

/// <summary>What the launcher writes to a detached VMM's stdin (JSON): the resolved config and how to start.</summary>
public sealed record VmmStartRequest
{
    [JsonPropertyName("config")] public required DomainConfig Config { get; init; }
    [JsonPropertyName("paused")] public bool Paused { get; init; }
    [JsonPropertyName("run_dir")] public required string RunDirectory { get; init; }
    /// <summary>restore: the saved domain to build the domain from (instead of loading the program).</summary>
    [JsonPropertyName("restore")] public string? RestoreFile { get; init; }
}

/// <summary>The one line a detached VMM writes back (on its stdout pipe) before it detaches: ready, or the error.</summary>
public sealed record VmmStartReport
{
    [JsonPropertyName("ok")] public bool Ok { get; init; }
    [JsonPropertyName("error")] public string? Error { get; init; }
    [JsonPropertyName("id")] public int Id { get; init; }
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("pid")] public int Pid { get; init; }
    /// <summary>Remarks for the user (a restore moved content found at a volume's host path aside).</summary>
    [JsonPropertyName("notes")] public List<string>? Notes { get; init; }
}
