using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus restore [-p] &lt;file&gt;</c></summary>
internal static class RestoreCommand
{
    public static Command Build()
    {
        var paused = new Option<bool>("--paused", "-p") { Description = "Leave the restored domain paused (see 'remus unpause')." };
        var file = new Argument<string>("file") { Description = "A file written by 'remus save'." };
        var command = new Command("restore",
            "Restore a saved domain into a new detached VMM; the program continues exactly where it was saved. " +
            "A truncated, corrupted or foreign file is refused and nothing is left behind.")
        {
            paused, file,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var info = Cli.Manager().Restore(parse.GetValue(file)!, parse.GetValue(paused));
            StdStreams.Out.WriteLine($"Domain '{info.Name}' restored: id {info.Id}, VMM pid {info.Pid}, {info.State.ToString().ToLowerInvariant()}.");
            return 0;
        }));
        return command;
    }
}
