using Remus.Toolstack.Security;

namespace Remus.Toolstack.Config;

/// <summary>
/// The host-wide configuration (TOML; <see cref="DefaultPath"/>, or REMUS_HOST_CONFIG): the TLS or PSK settings every
/// TCP channel of this host uses unless the command line says otherwise, and the receive policy. See docs/security.md.
/// <code>
/// [tls]
/// cert = "/etc/remus/host.crt"
/// key = "/etc/remus/host.key"
/// ca = "/etc/remus/ca.crt"
/// # or: [psk]  file = "/etc/remus/psk"
/// [receive]
/// allow_paths = ["/srv/remus", "/var/log/remus"]
/// max_memory = 8192        # MiB
/// max_vcpus = 64
/// </code>
/// A missing file is an empty configuration; a present one with a problem is a <see cref="ConfigException"/>
/// ("file:line: message").
/// </summary>
public sealed record HostConfig
{
    public const string DefaultPath = "/etc/remus/host.toml";
    public const string PathVariable = "REMUS_HOST_CONFIG";

    /// <summary>The host's channel protection (null: none configured).</summary>
    public ChannelSecurity? Security { get; init; }
    public ReceivePolicy Policy { get; init; } = new();

    /// <summary>Loads REMUS_HOST_CONFIG if set, else <see cref="DefaultPath"/>; empty when the file does not exist.</summary>
    public static HostConfig Load() => throw new NotImplementedException("issue 13: sec-policy");
}
