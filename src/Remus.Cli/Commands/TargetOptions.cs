using System.CommandLine;
using Remus.Toolstack.Config;
using Remus.Toolstack.Migration;

namespace Remus.Cli.Commands;

/// <summary>The channel options shared by migrate and protect (xl's -s, the TCP channel and its protection).</summary>
internal sealed class TargetOptions
{
    public readonly Option<string?> Ssh = new("--ssh-command", "-s")
    {
        Description = "The command to reach the target instead of 'ssh': '<cmd> <host> remus migrate-receive' is run. " +
                      "With -s '' the <host> argument itself is run as the shell command.",
    };
    public readonly Option<string?> Tcp = new("--tcp")
    {
        Description = "Use a TCP channel to HOST:PORT, where 'remus migrate-receive --tcp-listen' waits; protected by TLS or a " +
                      "pre-shared key (the options below or the host config), or plain with --insecure.",
        HelpName = "HOST:PORT",
    };
    public readonly Option<bool> Debug = new("--debug") { Description = "Ask the receiver to log more." };

    public readonly Option<string?> Volumes = new("--volumes")
    {
        Description = "Where the receiver keeps the domain's volumes (passed to 'remus migrate-receive --volumes DIR', a path on the " +
                      "receiving host); default: the same host paths as here. With --tcp or -s '', give it to the receiver yourself.",
        HelpName = "DIR",
    };

    public readonly SecurityOptions Security = new();

    public IEnumerable<Option> All => [Ssh, Tcp, Debug, Volumes, .. Security.All];

    public MigrationTarget? Get(ParseResult parse, string? host)
    {
        string? tcp = parse.GetValue(Tcp);
        if (tcp == null && string.IsNullOrEmpty(host)) return null;
        string? volumes = parse.GetValue(Volumes);
        if (volumes != null && (tcp != null || parse.GetValue(Ssh) == ""))
            throw new Remus.Toolstack.RemusException(tcp != null
                ? "--volumes goes to the receiver: give it to 'remus migrate-receive --tcp-listen ... --volumes DIR' there"
                : "--volumes with -s '': write --volumes DIR in the receiver command itself");
        if (tcp == null) Security.RefuseOnSsh(parse, "--tcp");
        else MigrationChannel.ParseEndpoint(tcp); // before the warning
        // Checked here, before the domain is asked: a TCP channel with no protection chosen is refused.
        var security = tcp == null ? null : Security.Resolve(parse, HostConfig.Load, tcp);
        // The VMM runs the receiver command, but in our working directory and environment (as xl runs it itself).
        return new MigrationTarget
        {
            Host = host ?? tcp!, SshCommand = parse.GetValue(Ssh), Tcp = tcp, Security = security, Debug = parse.GetValue(Debug),
            VolumesDirectory = volumes,
        }.WithCaller();
    }
}
