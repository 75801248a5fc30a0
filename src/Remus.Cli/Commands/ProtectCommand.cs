using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary>
/// <c>remus protect [-i MS] [-b] [-u] [-s CMD] [-e] [--tcp HOST:PORT [--tls-cert F --tls-key F --tls-ca F | --psk-file F
/// | --insecure]] [--timeout MS] &lt;domain&gt; [&lt;host&gt;]</c>
/// </summary>
internal static class ProtectCommand
{
    /// <summary>What `protect` says once when the domain is protected without a witness.</summary>
    public const string NoWitnessWarning = "no witness: a network partition between the hosts can leave the domain running on both; use --witness URL";

    public static Command Build()
    {
        var target = new TargetOptions();
        var interval = new Option<int>("--interval", "-i") { Description = "Checkpoint interval in milliseconds.", DefaultValueFactory = _ => 200 };
        var blackhole = new Option<bool>("--blackhole", "-b") { Description = "Send checkpoints to /dev/null (no backup): measures the cost of checkpointing." };
        var raw = new Option<bool>("--uncompressed", "-u") { Description = "Send checkpoints uncompressed." };
        var e = new Option<bool>("-e") { Description = "Accepted for xl compatibility: remus always returns once the domain is protected." };
        var timeout = new Option<int>("--timeout") { Description = "With a backup, its own --timeout counts (it arrives in the handshake and sets the ack wait, timeout - max(10%, 20 ms), and the heartbeats, every timeout/4); this one bounds the wait for that handshake (4 x this).", DefaultValueFactory = _ => 2000 };
        var witness = new Option<string?>("--witness")
        {
            Description = "The etcd witness (issue 12), client URLs separated by commas: this copy holds the domain's key under a lease " +
                          "and releases output only while the lease is certainly valid; the backup takes over only once it holds the key. " +
                          "Default: the domain's config key 'witness'; none: a network partition can leave the domain running on both hosts.",
            HelpName = "URL[,URL...]",
        };
        var witnessTtl = new Option<int>("--witness-ttl") { Description = "The witness lease's TTL in ms (renewed every TTL/3).", DefaultValueFactory = _ => Remus.Toolstack.Witness.WitnessUrls.DefaultTtlMs, HelpName = "MS" };
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var host = new Argument<string?>("host") { Description = "The backup host (for ssh), or the command with -s ''. Not needed with -b or --tcp.", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("protect",
            "Protect a running domain with Remus: synchronise it to a backup ('remus migrate-receive -r' there), then " +
            "checkpoint it every interval; its console output is released only once the backup holds the checkpoint, so " +
            "if this host dies the backup carries on with nothing the world saw lost. Returns once the domain is protected.")
        {
            interval, blackhole, raw, e, timeout, witness, witnessTtl, domain, host,
        };
        foreach (var o in target.All) command.Options.Add(o);
        command.SetAction(parse => Cli.Guard(() =>
        {
            bool bh = parse.GetValue(blackhole);
            var t = target.Get(parse, parse.GetValue(host));
            if (!bh && t == null) throw new Remus.Toolstack.RemusException("protect needs a backup host (or --tcp HOST:PORT, or -b)");
            var progress = new Progress(StdStreams.Error);
            var urls = Remus.Toolstack.Witness.WitnessUrls.Parse(parse.GetValue(witness));
            var (line, witnessUsed) = Cli.Manager().Protect(parse.GetValue(domain)!, bh ? null : t, parse.GetValue(interval), bh,
                !parse.GetValue(raw), parse.GetValue(timeout), progress.Report, urls, parse.GetValue(witnessTtl));
            progress.Done();
            if (witnessUsed == null && !bh) StdStreams.Error.WriteLine($"remus: {NoWitnessWarning}");
            StdStreams.Out.WriteLine(line);
            return 0;
        }));
        return command;
    }
}
