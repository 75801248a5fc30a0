using System.Text.Json;
using System.Text.Json.Serialization;
using Remus.Toolstack.Config;
using Remus.Toolstack.Control;
using Remus.Toolstack.Registry;
using Remus.Toolstack.Vmm;

namespace Remus.Toolstack;

/// <summary>Source-generated JSON for everything the toolstack writes: protocol, registry, VMM start, list --json.</summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(RunStateJsonConverter), typeof(PlatformKindJsonConverter)])]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(DomainRecord))]
[JsonSerializable(typeof(DomainInfo))]
[JsonSerializable(typeof(List<DomainInfo>))]
[JsonSerializable(typeof(DomainConfig))]
[JsonSerializable(typeof(VmmStartRequest))]
[JsonSerializable(typeof(VmmStartReport))]
[JsonSerializable(typeof(HostInfo))]
internal sealed partial class ToolstackJson : JsonSerializerContext
{
    /// <summary>Indented output for people (list --json).</summary>
    public static ToolstackJson Indented { get; } = new(new JsonSerializerOptions
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // "+" and "µ" as themselves
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new RunStateJsonConverter(), new PlatformKindJsonConverter() },
    });
}

/// <summary>Domain states as lowercase words: running, paused, exited, unknown.</summary>
internal sealed class RunStateJsonConverter() : JsonStringEnumConverter<DomainRunState>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);

/// <summary>Platforms as lowercase words: auto, kvm, ptrace.</summary>
internal sealed class PlatformKindJsonConverter() : JsonStringEnumConverter<Remus.Sandbox.Platform.PlatformKind>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);
