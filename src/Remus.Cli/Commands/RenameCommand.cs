using System.CommandLine;

namespace Remus.Cli.Commands;

/// <summary><c>remus rename &lt;domain&gt; &lt;new-name&gt;</c></summary>
internal static class RenameCommand
{
    public static Command Build()
    {
        var domain = new Argument<string>("domain") { Description = "The domain's name or id." };
        var newName = new Argument<string>("new-name") { Description = "The new name: letters, digits, '_', '.', '-'; not in use." };
        var command = new Command("rename", "Rename a running domain.") { domain, newName };
        command.SetAction(parse => Cli.Guard(() =>
        {
            Cli.Manager().Rename(parse.GetValue(domain)!, parse.GetValue(newName)!);
            return 0;
        }));
        return command;
    }
}
