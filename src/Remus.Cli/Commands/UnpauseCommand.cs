using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus unpause &lt;domain&gt;</c></summary>
internal static class UnpauseCommand
{
    public static Command Build()
    {
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var command = new Command("unpause", "Let a paused domain go on (or start one created with -p).") { domain };
        command.SetAction(parse => Cli.Guard(() =>
        {
            Cli.Manager().Unpause(parse.GetValue(domain)!);
            return 0;
        }));
        return command;
    }
}
