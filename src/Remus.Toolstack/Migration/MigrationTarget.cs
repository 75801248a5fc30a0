using System.Text.Json.Serialization;

namespace Remus.Toolstack.Migration;

/// <summary>
/// Where a migration (or a Remus backup stream) goes, as xl spells it: by default `ssh HOST remus migrate-receive`;
/// `-s CMD` replaces ssh; `-s ''` runs HOST itself as the shell command; `--tcp HOST:PORT` is a TCP channel to a
/// `remus migrate-receive --tcp-listen` on the other side, protected as <see cref="Security"/> says (TLS, a
/// pre-shared key, or plain with --insecure).
/// </summary>
public sealed record MigrationTarget
{
    [JsonPropertyName("host")] public required string Host { get; init; }
    /// <summary>-s: the ssh command; "" means HOST is the whole command; null means "ssh".</summary>
    [JsonPropertyName("ssh")] public string? SshCommand { get; init; }
    /// <summary>--tcp HOST:PORT.</summary>
    [JsonPropertyName("tcp")] public string? Tcp { get; init; }
    /// <summary>--tcp: how the channel is protected (TLS, PSK, or --insecure); null for ssh channels.</summary>
    [JsonPropertyName("security")] public Security.ChannelSecurity? Security { get; init; }
    /// <summary>The receiver is a Remus backup (migrate-receive -r).</summary>
    [JsonPropertyName("remus")] public bool Remus { get; init; }
    /// <summary>--debug: the receiver logs more.</summary>
    [JsonPropertyName("debug")] public bool Debug { get; init; }
    /// <summary>--volumes DIR: where the receiver keeps the domain's volumes (its own path; ssh receivers only).</summary>
    [JsonPropertyName("volumes")] public string? VolumesDirectory { get; init; }

    /// <summary>The working directory the receiver command runs in: the `remus migrate`/`protect` invocation's, as
    /// with xl (null: the VMM's own).</summary>
    [JsonPropertyName("cwd")] public string? WorkingDirectory { get; init; }
    /// <summary>The receiver command's environment: the invocation's (null: the VMM's own).</summary>
    [JsonPropertyName("env")] public Dictionary<string, string>? Environment { get; init; }

    /// <summary>This target with the calling process's working directory and environment, for the receiver command
    /// (the VMM runs it, but as if the caller had: `-s '' "./remus migrate-receive"` means the caller's ./remus).</summary>
    public MigrationTarget WithCaller() => this with
    {
        WorkingDirectory = System.Environment.CurrentDirectory,
        Environment = System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal),
    };

    /// <summary>The shell command that starts the receiver (not for TCP).</summary>
    public string ReceiverCommand
    {
        get
        {
            if (SshCommand == "") return Host;
            string receive = "remus migrate-receive" + (Remus ? " -r" : "") + (Debug ? " --debug" : "") +
                             (VolumesDirectory is { } dir ? " --volumes " + ShellQuote(dir) : "");
            return $"{SshCommand ?? "ssh"} {Host} {receive}";
        }
    }

    /// <summary>A word for a POSIX shell: as it is when it is safe, else in single quotes.</summary>
    internal static string ShellQuote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+=:,@%".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>For messages: where the domain goes.</summary>
    public string Describe() => Tcp != null ? $"tcp:{Tcp}" : SshCommand == "" ? Host : Host;
}
