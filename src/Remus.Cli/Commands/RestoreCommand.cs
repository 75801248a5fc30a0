using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus restore [-p] [--volumes DIR] &lt;file&gt;</c></summary>
internal static class RestoreCommand
{
    public static Command Build()
    {
        var paused = new Option<bool>("--paused", "-p") { Description = "Leave the restored domain paused (see 'remus unpause')." };
        var volumes = new Option<string?>("--volumes")
        {
            Description = "Keep the domain's volumes under DIR: each at DIR/<its target without the leading slash> (target /data -> DIR/data). " +
                          "Default: at the saved domain's own host paths. Content found there is moved aside to PATH.remus-previous.",
            HelpName = "DIR",
        };
        var file = new Argument<string>("file") { Description = "A file written by 'remus save'." };
        var command = new Command("restore",
            "Restore a saved domain into a new detached VMM; the program continues exactly where it was saved. " +
            "A truncated, corrupted or foreign file is refused and nothing is left behind.")
        {
            paused, volumes, file,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var info = Cli.Manager().Restore(parse.GetValue(file)!, parse.GetValue(paused), parse.GetValue(volumes),
                note => StdStreams.Error.WriteLine($"remus: {note}"));
            StdStreams.Out.WriteLine($"Domain '{info.Name}' restored: id {info.Id}, VMM pid {info.Pid}, {info.State.ToString().ToLowerInvariant()}.");
            return 0;
        }));
        return command;
    }
}
