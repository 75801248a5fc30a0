using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus console &lt;domain&gt;</c></summary>
internal static class ConsoleCommand
{
    public static Command Build()
    {
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var command = new Command("console",
            "Attach to a domain's console: show its recent output, then what the program writes, and send our stdin to it. " +
            "Ends with the program's exit status when it exits, or with 0 when you press Ctrl-] (the domain goes on).")
        {
            domain,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var name = parse.GetValue(domain)!;
            if (Remus.Toolstack.Console.Terminal.IsTerminal(0))
                StdStreams.Error.WriteLine($"remus: connected to the console of '{name}'; Ctrl-] detaches");
            var outcome = Cli.Manager().AttachConsole(name);
            return outcome.ExitStatus ?? 0;
        }));
        return command;
    }
}
