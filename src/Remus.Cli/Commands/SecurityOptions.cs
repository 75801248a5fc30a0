using System.CommandLine;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Security;

namespace Remus.Cli.Commands;

/// <summary>
/// How a TCP channel is protected, on the sender (`migrate`, `protect`) and the receiver (`migrate-receive`):
/// --tls-cert/--tls-key/--tls-ca, --psk-file or --insecure; the command line overrides the host config
/// (<see cref="HostConfig"/>). A TCP channel with no protection chosen anywhere is refused; ssh channels take none
/// (ssh authenticates them). See docs/security.md.
/// </summary>
internal sealed class SecurityOptions
{
    /// <summary>The one line that refuses an unprotected TCP channel, naming the three ways.</summary>
    public const string NoProtection =
        "a TCP channel needs protection: give --tls-cert FILE --tls-key FILE --tls-ca FILE, or --psk-file FILE (on both hosts), " +
        $"or set [tls] or [psk] in the host config ({HostConfig.DefaultPath} or ${HostConfig.PathVariable}); " +
        "--insecure sends it in the clear";

    public readonly Option<string?> TlsCert = new("--tls-cert") { Description = "TLS: this host's certificate (PEM), signed by the --tls-ca CA. With --tls-key and --tls-ca.", HelpName = "FILE" };
    public readonly Option<string?> TlsKey = new("--tls-key") { Description = "TLS: this host's private key (PEM).", HelpName = "FILE" };
    public readonly Option<string?> TlsCa = new("--tls-ca") { Description = "TLS: the CA (PEM) the peer's certificate must be signed by (the only one trusted).", HelpName = "FILE" };
    public readonly Option<string?> PskFile = new("--psk-file") { Description = "A pre-shared key (a file of at least 32 secret bytes, the same on both hosts): both ends prove it before any record is read, every byte is encrypted and authenticated.", HelpName = "FILE" };
    public readonly Option<bool> Insecure = new("--insecure") { Description = "Allow a plain TCP channel: neither authenticated nor encrypted (anyone on the path can read and forge it)." };

    public IEnumerable<Option> All => [TlsCert, TlsKey, TlsCa, PskFile, Insecure];

    /// <summary>Whether any of these options was given.</summary>
    public bool AnyGiven(ParseResult parse) =>
        parse.GetValue(TlsCert) != null || parse.GetValue(TlsKey) != null || parse.GetValue(TlsCa) != null ||
        parse.GetValue(PskFile) != null || parse.GetValue(Insecure);

    /// <summary>
    /// The protection of a TCP channel to or from <paramref name="peer"/>: the command line's, else the host config's;
    /// refused (one line) when neither chose one. With --insecure, warns once on stderr.
    /// </summary>
    public ChannelSecurity Resolve(ParseResult parse, Func<HostConfig> hostConfig, string peer)
    {
        var security = FromCommandLine(parse) ?? hostConfig().Security ?? throw new RemusException(NoProtection);
        if (security.Mode == ChannelMode.Insecure) Warn(peer);
        return security;
    }

    /// <summary>The options refused on a channel that is not TCP (ssh authenticates it).</summary>
    public void RefuseOnSsh(ParseResult parse, string which)
    {
        if (AnyGiven(parse))
            throw new RemusException($"--tls-cert/--tls-key/--tls-ca, --psk-file and --insecure are for TCP channels ({which}); " +
                                     "an ssh channel is authenticated and encrypted by ssh");
    }

    private ChannelSecurity? FromCommandLine(ParseResult parse)
    {
        string? cert = parse.GetValue(TlsCert), key = parse.GetValue(TlsKey), ca = parse.GetValue(TlsCa), psk = parse.GetValue(PskFile);
        bool insecure = parse.GetValue(Insecure);
        bool tls = cert != null || key != null || ca != null;
        int modes = (tls ? 1 : 0) + (psk != null ? 1 : 0) + (insecure ? 1 : 0);
        if (modes > 1) throw new RemusException("choose one protection: --tls-cert/--tls-key/--tls-ca, --psk-file or --insecure");
        if (tls)
        {
            if (cert == null || key == null || ca == null)
                throw new RemusException("TLS needs all three: --tls-cert FILE --tls-key FILE --tls-ca FILE");
            return new ChannelSecurity { Mode = ChannelMode.Tls, CertFile = Existing(cert, "--tls-cert"), KeyFile = Existing(key, "--tls-key"), CaFile = Existing(ca, "--tls-ca") };
        }
        if (psk != null) return new ChannelSecurity { Mode = ChannelMode.Psk, PskFile = Existing(psk, "--psk-file") };
        return insecure ? ChannelSecurity.Insecure : null;
    }

    /// <summary>The absolute path of a file that exists (the VMM that opens it runs elsewhere).</summary>
    private static string Existing(string file, string option)
    {
        string full = Path.GetFullPath(file);
        if (!File.Exists(full)) throw new RemusException($"{option} {file}: no such file");
        return full;
    }

    /// <summary>The --insecure warning, once per command.</summary>
    public static void Warn(string peer)
    {
        try
        {
            StdStreams.Error.WriteLine($"remus: warning: the channel to/from {peer} is plain TCP (--insecure): anyone on the path can read and forge it");
            StdStreams.Error.Flush();
        }
        catch (IOException)
        {
            // No stderr to warn on.
        }
    }
}
