using System.Text.Json.Serialization;

namespace Remus.Toolstack.Registry;

/// <summary>
/// A running domain's registry entry (<c>domains/ID.json</c>): how to find its VMM and what it is called. Written
/// only by that VMM, under the run directory's lock (at registration and rename), removed by it on exit.
/// </summary>
public sealed record DomainRecord
{
    public const int CurrentVersion = 1;

    [JsonPropertyName("version")] public int Version { get; init; } = CurrentVersion;
    [JsonPropertyName("id")] public required int Id { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("pid")] public required int Pid { get; init; }
    [JsonPropertyName("memory")] public int Memory { get; init; }
    [JsonPropertyName("program")] public string Program { get; init; } = "";
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
}
