using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary>
/// <c>remus migrate [-s CMD] [--tcp HOST:PORT [--tls-cert F --tls-key F --tls-ca F | --psk-file F | --insecure]] [-u]
/// [--debug] &lt;domain&gt; &lt;host&gt;</c>
/// </summary>
internal static class MigrateCommand
{
    public static Command Build()
    {
        var target = new TargetOptions();
        var raw = new Option<bool>("--uncompressed", "-u") { Description = "Send pages uncompressed." };
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var host = new Argument<string?>("host") { Description = "The target host (for ssh), or the command with -s ''. Not needed with --tcp.", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("migrate",
            "Live-migrate a running domain to another host: all memory while it runs, then the pages dirtied meanwhile " +
            "round after round, then a short pause for the rest and the vCPU and kernel state. On any failure the domain " +
            "goes on running here and nothing is left on the target.")
        {
            raw, domain, host,
        };
        foreach (var o in target.All) command.Options.Add(o);
        command.SetAction(parse => Cli.Guard(() =>
        {
            var t = target.Get(parse, parse.GetValue(host)) ?? throw new Remus.Toolstack.RemusException("migrate needs a target host (or --tcp HOST:PORT)");
            var progress = new Progress(StdStreams.Error);
            string line = Cli.Manager().Migrate(parse.GetValue(domain)!, t, !parse.GetValue(raw), progress.Report);
            progress.Done();
            StdStreams.Out.WriteLine(line);
            return 0;
        }));
        return command;
    }
}

/// <summary>Progress lines on stderr: rewritten in place on a terminal, one per line otherwise.</summary>
internal sealed class Progress(TextWriter error)
{
    private readonly bool _tty = !System.Console.IsErrorRedirected;
    private int _width;

    public void Report(string line)
    {
        if (_tty)
        {
            error.Write("\r" + line.PadRight(_width));
            _width = Math.Max(_width, line.Length);
        }
        else
        {
            error.WriteLine(line);
        }
        error.Flush();
    }

    public void Done()
    {
        if (_tty && _width > 0) error.WriteLine();
    }
}
