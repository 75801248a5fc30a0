using System.Text.Json;
using System.Text.Json.Serialization;
using Remus.Checkpoint.Witness;

namespace Remus.Toolstack.Witness;

/// <summary>The JSON value under /remus/domains/&lt;name&gt;/active: who holds the key, and the last epoch it committed.</summary>
public sealed record WitnessValue(
    [property: JsonPropertyName("host")] string Host,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("epoch")] ulong Epoch,
    [property: JsonPropertyName("time")] DateTime Time)
{
    /// <summary>The value for <paramref name="holder"/> at <paramref name="epoch"/>, stamped now (UTC).</summary>
    public static WitnessValue For(WitnessHolder holder, ulong epoch) =>
        new(holder.Host, holder.VmmPid, holder.Role, epoch, DateTime.UtcNow);

    /// <summary>UTF-8 JSON bytes.</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, WitnessJson.Default.WitnessValue);

    /// <summary>The value parsed, or null when it is not ours (someone else's key under the prefix, or garbage).</summary>
    public static WitnessValue? Parse(ReadOnlySpan<byte> utf8)
    {
        try { return JsonSerializer.Deserialize(utf8, WitnessJson.Default.WitnessValue); }
        catch (JsonException) { return null; }
    }

    /// <summary>"host H, pid P, role R, epoch E" for messages.</summary>
    public string Describe() => $"host {Host}, pid {Pid}, {Role}, epoch {Epoch}";
}

/// <summary>A row of `remus list --cluster`: one protected domain as the witness knows it (lease times in the whole seconds etcd tells).</summary>
public sealed record WitnessDomain(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("host")] string? Host,
    [property: JsonPropertyName("pid")] int? Pid,
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("epoch")] ulong? Epoch,
    [property: JsonPropertyName("lease_ttl_s")] long? LeaseTtlSeconds,
    [property: JsonPropertyName("lease_left_s")] long? LeaseSecondsLeft)
{
    /// <summary>A JSON array, indented (list --cluster --json).</summary>
    public static string ToJson(IEnumerable<WitnessDomain> rows) => JsonSerializer.Serialize(rows.ToList(), WitnessJson.Indented.ListWitnessDomain);

    /// <summary>Parses what <see cref="ToJson"/> wrote.</summary>
    public static List<WitnessDomain> ListFromJson(string json) => JsonSerializer.Deserialize(json, WitnessJson.Default.ListWitnessDomain) ?? [];
}

[JsonSerializable(typeof(WitnessValue))]
[JsonSerializable(typeof(List<WitnessDomain>))]
internal sealed partial class WitnessJson : JsonSerializerContext
{
    /// <summary>Indented, for list --cluster --json.</summary>
    public static WitnessJson Indented { get; } = new(new JsonSerializerOptions { WriteIndented = true });
}
