using System.CommandLine;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Registry;
using Remus.Toolstack.Security;
using Remus.Toolstack.Vmm;

namespace Remus.Cli.Commands;

/// <summary>
/// <c>remus migrate-receive [-r] [-F] [-e] [-p] [--tcp-listen ADDR:PORT [--tls-cert F --tls-key F --tls-ca F | --psk-file F |
/// --insecure]] [--allow-path PREFIX]... [--max-memory MIB] [--max-vcpus N] [--timeout MS] [--volumes DIR]</c>
/// </summary>
internal static class MigrateReceiveCommand
{
    /// <summary>A remark on stderr; the sender's end of it may be gone already (ssh ended), which is no error here.</summary>
    private static void Say(string message)
    {
        try
        {
            StdStreams.Error.WriteLine($"remus: {message}");
            StdStreams.Error.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or Remus.Toolstack.Console.OutputClosedException)
        {
        }
    }

    public static Command Build()
    {
        var remus = new Option<bool>("--remus", "-r") { Description = "Be the Remus backup of a protected domain: keep the last complete checkpoint and take over when the primary is lost." };
        var foreground = new Option<bool>("--foreground", "-F") { Description = "Stay in the foreground once the domain runs here." };
        var e = new Option<bool>("-e") { Description = "Accepted for xl compatibility (the receiver never waits for the domain's death in the foreground unless -F)." };
        var paused = new Option<bool>("--paused", "-p") { Description = "Leave the domain paused once it arrived." };
        var listen = new Option<string?>("--tcp-listen") { Description = "Take the stream from one TCP connection on ADDR:PORT instead of stdin/stdout." };
        var timeout = new Option<int>("--timeout") { Description = "(-r) How long the primary may stay silent (ms) before it is declared lost. Sent to the primary, which heartbeats every timeout/4 and refuses a timeout under 100 ms.", DefaultValueFactory = _ => 2000 };
        var debug = new Option<bool>("--debug") { Description = "Tell more on stderr." };
        var volumes = new Option<string?>("--volumes")
        {
            Description = "Keep the domain's volumes under DIR: each at DIR/<its target without the leading slash> (target /data -> DIR/data). " +
                          "Default: at the sender's host paths. Copies are built at PATH.remus-incoming and moved into place when the " +
                          "domain becomes this host's; content found there is moved aside to PATH.remus-previous.",
            HelpName = "DIR",
        };
        var witness = new Option<string?>("--witness")
        {
            Description = "(-r) The etcd witness (client URLs separated by commas): take over only once this copy holds the domain's key " +
                          "there; while the primary still holds it, do not take over (and say why).",
            HelpName = "URL[,URL...]",
        };
        var security = new SecurityOptions();
        var allowPath = new Option<string[]>("--allow-path")
        {
            Description = "A host path (prefix) the incoming domain's configuration may name (console_log, files, volumes, the network's " +
                          "netns); repeatable; overrides allow_paths in the host config. With --tcp-listen and none given anywhere, no host " +
                          "path is allowed; on stdin (ssh) none given means no restriction.",
            HelpName = "PREFIX",
            AllowMultipleArgumentsPerToken = false,
        };
        var maxMemory = new Option<int?>("--max-memory") { Description = "The most memory (MiB) an incoming domain may have (overrides max_memory in the host config).", HelpName = "MIB" };
        var maxVcpus = new Option<int?>("--max-vcpus") { Description = "The most vCPUs an incoming domain may have (overrides max_vcpus in the host config).", HelpName = "N" };
        var witnessTtl = new Option<int>("--witness-ttl") { Description = "(-r) The TTL in ms of the witness lease taken at a takeover.", DefaultValueFactory = _ => Remus.Toolstack.Witness.WitnessUrls.DefaultTtlMs, HelpName = "MS" };
        var command = new Command("migrate-receive",
            "Receive a migrating domain on stdin/stdout (what 'remus migrate' runs over ssh) or on a TCP port, and become " +
            "its VMM. The domain is NAME--incoming until it is complete. With -r, be a Remus backup: on the loss of the " +
            "primary, with a complete checkpoint, fail over and run the domain here as NAME.")
        {
            remus, foreground, e, paused, listen, timeout, debug, volumes, witness, witnessTtl, allowPath, maxMemory, maxVcpus,
        };
        foreach (var o in security.All) command.Options.Add(o);
        command.SetAction(parse => Cli.Guard(() =>
        {
            var hostConfig = new Lazy<HostConfig>(HostConfig.Load);
            string? endpoint = parse.GetValue(listen);
            if (endpoint == null) security.RefuseOnSsh(parse, "--tcp-listen");
            else Remus.Toolstack.Migration.MigrationChannel.ParseEndpoint(endpoint); // before the warning
            var channel = endpoint == null ? null : security.Resolve(parse, () => hostConfig.Value, endpoint);
            var policy = Policy(parse, allowPath, maxMemory, maxVcpus, hostConfig.Value, tcp: endpoint != null);
            return Receive(parse, channel, policy);
        }));
        return command;

        int Receive(ParseResult parse, ChannelSecurity? channel, ReceivePolicy policy) => IncomingVmm.Receive(new ReceiveOptions
        {
            Security = channel,
            Policy = policy,
            Witness = Remus.Toolstack.Witness.WitnessUrls.Parse(parse.GetValue(witness)),
            WitnessTtl = TimeSpan.FromMilliseconds(Math.Max(Remus.Toolstack.Witness.WitnessUrls.MinTtlMs, parse.GetValue(witnessTtl))),
            Remus = parse.GetValue(remus),
            Foreground = parse.GetValue(foreground),
            Paused = parse.GetValue(paused),
            TcpListen = parse.GetValue(listen),
            Timeout = TimeSpan.FromMilliseconds(Math.Max(1, parse.GetValue(timeout))), // the primary judges it (too short: refused there)
            Debug = parse.GetValue(debug),
            VolumesDirectory = parse.GetValue(volumes) is { } dir ? Path.GetFullPath(dir) : null,
        }, RunDirectory.FromEnvironment(), Say);
    }

    /// <summary>
    /// The receive policy: the command line's, else the host config's (per setting). A TCP receiver with no allowed
    /// paths from either allows none (default deny); a stdin receiver (ssh, -s) was started by someone with a shell
    /// on this host, so with none given it allows what its invoker could: every path.
    /// </summary>
    private static ReceivePolicy Policy(ParseResult parse, Option<string[]> allowPath, Option<int?> maxMemory, Option<int?> maxVcpus,
                                        HostConfig hostConfig, bool tcp)
    {
        var policy = hostConfig.Policy;
        if (parse.GetValue(allowPath) is { Length: > 0 } paths)
            policy = policy with { AllowedPaths = paths.Select(Path.GetFullPath).ToList(), RestrictPaths = true };
        else if (!tcp && !hostConfig.HasAllowPaths) policy = policy with { RestrictPaths = false };
        if (parse.GetValue(maxMemory) is { } mib)
            policy = policy with { MaxMemoryMiB = mib > 0 ? mib : throw new RemusException("--max-memory must be at least 1 (MiB)") };
        if (parse.GetValue(maxVcpus) is { } n)
            policy = policy with { MaxVcpus = n > 0 ? n : throw new RemusException("--max-vcpus must be at least 1") };
        return policy;
    }

}
