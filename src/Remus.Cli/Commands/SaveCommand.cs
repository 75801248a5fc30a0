using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus save [-c] [-u] &lt;domain&gt; &lt;file&gt;</c></summary>
internal static class SaveCommand
{
    public static Command Build()
    {
        var keep = new Option<bool>("--continue", "-c") { Description = "Leave the domain running after the save (default: it stops)." };
        var raw = new Option<bool>("--uncompressed", "-u") { Description = "Write pages uncompressed." };
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var file = new Argument<string>("file") { Description = "The file to write (the checkpoint stream format, docs/stream-format.md)." };
        var command = new Command("save",
            "Save a domain's whole state (memory, vCPU, open files, clocks) to a file. 'remus restore' continues it exactly where it stopped.")
        {
            keep, raw, domain, file,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string line = Cli.Manager().Save(parse.GetValue(domain)!, parse.GetValue(file)!, parse.GetValue(keep), !parse.GetValue(raw));
            StdStreams.Out.WriteLine(line);
            return 0;
        }));
        return command;
    }
}
