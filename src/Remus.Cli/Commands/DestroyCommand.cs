using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus destroy &lt;domain&gt;</c></summary>
internal static class DestroyCommand
{
    public static Command Build()
    {
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var command = new Command("destroy",
            "Kill a domain's program at once (as SIGKILL would) and remove the domain; returns when it is gone.")
        {
            domain,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            Cli.Manager().Destroy(parse.GetValue(domain)!);
            return 0;
        }));
        return command;
    }
}
