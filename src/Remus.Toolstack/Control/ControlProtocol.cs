using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Remus.Toolstack.Control;

/// <summary>
/// The control protocol between the toolstack and a domain's VMM, over the VMM's Unix stream socket
/// (<c>domains/ID.sock</c>). One request per connection: the client sends one JSON line, the VMM answers one JSON
/// line. Requests (<see cref="ControlOps"/>):
/// <code>
/// {"v":1,"op":"info"}                       -> {"v":1,"ok":true,"domain":{...DomainInfo...}}
/// {"v":1,"op":"pause"} / "unpause"          -> {"v":1,"ok":true,"domain":{...}}
/// {"v":1,"op":"rename","name":"new"}        -> {"v":1,"ok":true,"domain":{...}}
/// {"v":1,"op":"destroy"}                    -> {"v":1,"ok":true,"exit_status":137}   (sent once the domain is gone)
/// {"v":1,"op":"console","replay":true}      -> {"v":1,"ok":true,"domain":{...}} then console frames (below)
/// any failure                               -> {"v":1,"ok":false,"error":"one line"}
/// </code>
/// After a console request is accepted the connection carries console traffic: from the VMM, frames
/// <c>[kind:u8][length:u32 LE][body]</c> (<see cref="ConsoleFrameKind"/>: output on stdout or stderr, then one Exit
/// frame whose body is the exit status as i32 LE); from the client, raw bytes for the program's stdin.
/// A VMM refuses a request of another version with an error naming both versions.
/// </summary>
public static class ControlProtocol
{
    public const int Version = 1;

    /// <summary>Longest request or response line.</summary>
    public const int MaxLineBytes = 1 << 20;

    public const int FrameHeaderBytes = 5;

    /// <summary>
    /// Parses one request line as the VMM's control socket reads it (untrusted: any local client may connect).
    /// Returns the request, or null with <paramref name="failure"/> set to the response that refuses it (malformed
    /// JSON, no request, another protocol version). Never throws for the line's content.
    /// </summary>
    internal static ControlRequest? ParseRequest(ReadOnlySpan<byte> line, out ControlResponse? failure)
    {
        ControlRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(line, ToolstackJson.Default.ControlRequest);
        }
        catch (JsonException e)
        {
            failure = ControlResponse.Failure($"malformed request: {e.Message}");
            return null;
        }
        if (request is null || request.Version != Version)
        {
            failure = ControlResponse.Failure(
                $"this VMM speaks control protocol {Version}, the request is version {request?.Version}");
            return null;
        }
        failure = null;
        return request;
    }

    public static void WriteFrameHeader(Span<byte> header, ConsoleFrameKind kind, int length)
    {
        header[0] = (byte)kind;
        BinaryPrimitives.WriteInt32LittleEndian(header[1..], length);
    }
}

public static class ControlOps
{
    public const string Info = "info";
    public const string Pause = "pause";
    public const string Unpause = "unpause";
    public const string Rename = "rename";
    public const string Destroy = "destroy";
    public const string Console = "console";
    public const string Save = "save";
    public const string Migrate = "migrate";
    public const string Protect = "protect";
}

public enum ConsoleFrameKind : byte
{
    Stdout = 1,
    Stderr = 2,
    /// <summary>The program exited; body: exit status (i32 LE). Last frame.</summary>
    Exit = 3,
}

public sealed record ControlRequest
{
    [JsonPropertyName("v")] public int Version { get; init; } = ControlProtocol.Version;
    [JsonPropertyName("op")] public required string Op { get; init; }
    /// <summary>rename: the new name.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }
    /// <summary>console: send the recent output first.</summary>
    [JsonPropertyName("replay")] public bool Replay { get; init; }
    /// <summary>save: the file to write.</summary>
    [JsonPropertyName("path")] public string? Path { get; init; }
    /// <summary>save -c: the domain goes on running after the save.</summary>
    [JsonPropertyName("keep_running"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool KeepRunning { get; init; }
    /// <summary>save/migrate/protect: compress pages (off with -u); null means yes.</summary>
    [JsonPropertyName("compress")] public bool? Compress { get; init; }
    /// <summary>migrate/protect: where to (null with protect -b).</summary>
    [JsonPropertyName("target")] public Migration.MigrationTarget? Target { get; init; }
    /// <summary>protect: checkpoint interval in ms (null: the seed's 200).</summary>
    [JsonPropertyName("interval_ms")] public int? IntervalMs { get; init; }
    /// <summary>protect -b: checkpoints to /dev/null.</summary>
    [JsonPropertyName("blackhole"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool Blackhole { get; init; }
    /// <summary>protect --timeout: ack timeout in ms (null: 2000).</summary>
    [JsonPropertyName("timeout_ms")] public int? TimeoutMs { get; init; }
    /// <summary>protect --witness: the etcd client URLs of the witness (null: the domain's config key `witness`, else none).</summary>
    [JsonPropertyName("witness")] public string[]? Witness { get; init; }
    /// <summary>protect --witness-ttl: the witness lease's TTL in ms (null: 1000).</summary>
    [JsonPropertyName("witness_ttl_ms")] public int? WitnessTtlMs { get; init; }
}

public sealed record ControlResponse
{
    [JsonPropertyName("v")] public int Version { get; init; } = ControlProtocol.Version;
    [JsonPropertyName("ok")] public bool Ok { get; init; }
    [JsonPropertyName("error")] public string? Error { get; init; }
    [JsonPropertyName("domain")] public DomainInfo? Domain { get; init; }
    [JsonPropertyName("exit_status")] public int? ExitStatus { get; init; }
    /// <summary>A progress line of a long operation; more lines follow, the last one has no progress.</summary>
    [JsonPropertyName("progress")] public string? Progress { get; init; }
    /// <summary>The one-line result of save/migrate/protect.</summary>
    [JsonPropertyName("result")] public string? Result { get; init; }

    public static ControlResponse Failure(string error) => new() { Ok = false, Error = error };
}
