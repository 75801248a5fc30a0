using System.Text.Json.Serialization;

namespace Remus.Toolstack.Security;

/// <summary>How a TCP migration or Remus channel is protected (issue 13, docs/security.md).</summary>
public enum ChannelMode
{
    /// <summary>Plain TCP: only with an explicit --insecure (said once, as a warning).</summary>
    Insecure,
    /// <summary>TLS 1.3/1.2 with mutual authentication by certificates signed by the given CA.</summary>
    Tls,
    /// <summary>A pre-shared key: both ends prove the key before any record is read; every byte authenticated and encrypted.</summary>
    Psk,
}

/// <summary>
/// The protection of one TCP channel, on either end: what the CLI options (--tls-cert/--tls-key/--tls-ca,
/// --psk-file, --insecure) or the host-wide config (<see cref="Config.HostConfig"/>) chose. The sender's travels to its
/// VMM inside <see cref="Migration.MigrationTarget"/> (JSON): file paths only, never key material.
/// ssh channels (the default) are not TCP channels: ssh protects them and this does not apply.
/// </summary>
public sealed record ChannelSecurity
{
    [JsonPropertyName("mode")] public ChannelMode Mode { get; init; }
    /// <summary>TLS: this end's certificate (PEM).</summary>
    [JsonPropertyName("tls_cert")] public string? CertFile { get; init; }
    /// <summary>TLS: this end's private key (PEM).</summary>
    [JsonPropertyName("tls_key")] public string? KeyFile { get; init; }
    /// <summary>TLS: the CA (PEM) the peer's certificate must chain to (and nothing else is trusted).</summary>
    [JsonPropertyName("tls_ca")] public string? CaFile { get; init; }
    /// <summary>PSK: the file holding the pre-shared key (at least 32 bytes of secret; see docs/security.md).</summary>
    [JsonPropertyName("psk_file")] public string? PskFile { get; init; }

    public static ChannelSecurity Insecure { get; } = new() { Mode = ChannelMode.Insecure };

    /// <summary>For messages: "TLS (cert ...)", "pre-shared key (FILE)", "plain TCP (--insecure)".</summary>
    public string Describe() => Mode switch
    {
        ChannelMode.Tls => $"TLS (certificate {CertFile}, CA {CaFile})",
        ChannelMode.Psk => $"pre-shared key ({PskFile})",
        _ => "plain TCP (--insecure: neither authenticated nor encrypted)",
    };
}
