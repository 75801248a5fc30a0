using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus pause &lt;domain&gt;</c></summary>
internal static class PauseCommand
{
    public static Command Build()
    {
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var command = new Command("pause", "Pause a domain: its program stops where it is until unpaused.") { domain };
        command.SetAction(parse => Cli.Guard(() =>
        {
            Cli.Manager().Pause(parse.GetValue(domain)!);
            return 0;
        }));
        return command;
    }
}
