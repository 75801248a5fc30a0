using System.Text.Json.Serialization;

namespace Remus.Toolstack.Migration;

/// <summary>
/// Where a migration (or a Remus backup stream) goes, as xl spells it: by default `ssh HOST remus migrate-receive`;
/// `-s CMD` replaces ssh; `-s ''` runs HOST itself as the shell command; `--tcp HOST:PORT` is a plain TCP channel
/// to a `remus migrate-receive --tcp-listen` on the other side.
/// </summary>
public sealed record MigrationTarget
{
    [JsonPropertyName("host")] public required string Host { get; init; }
    /// <summary>-s: the ssh command; "" means HOST is the whole command; null means "ssh".</summary>
    [JsonPropertyName("ssh")] public string? SshCommand { get; init; }
    /// <summary>--tcp HOST:PORT.</summary>
    [JsonPropertyName("tcp")] public string? Tcp { get; init; }
    /// <summary>The receiver is a Remus backup (migrate-receive -r).</summary>
    [JsonPropertyName("remus")] public bool Remus { get; init; }
    /// <summary>--debug: the receiver logs more.</summary>
    [JsonPropertyName("debug")] public bool Debug { get; init; }

    /// <summary>The shell command that starts the receiver (not for TCP).</summary>
    public string ReceiverCommand
    {
        get
        {
            if (SshCommand == "") return Host;
            string receive = "remus migrate-receive" + (Remus ? " -r" : "") + (Debug ? " --debug" : "");
            return $"{SshCommand ?? "ssh"} {Host} {receive}";
        }
    }

    /// <summary>For messages: where the domain goes.</summary>
    public string Describe() => Tcp != null ? $"tcp:{Tcp}" : SshCommand == "" ? Host : Host;
}
