using System.CommandLine;
using Remus.Cli.Commands;

namespace Remus.Cli;

/// <summary>The <c>remus</c> command line: parses, calls the toolstack, prints. Mirrors Xen's <c>xl</c>.</summary>
internal static class RemusCommandLine
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand(
            "Remus: run unmodified static Linux x86-64 programs in KVM micro-VMs (domains), one VMM process per domain.\n" +
            $"Domains live in the run directory ${Remus.Toolstack.Registry.RunDirectory.EnvironmentVariable} (default /run/remus).")
        {
            RunCommand.Build(),
            CreateCommand.Build(),
            ListCommand.Build(),
            ConsoleCommand.Build(),
            PauseCommand.Build(),
            UnpauseCommand.Build(),
            DestroyCommand.Build(),
            RenameCommand.Build(),
            SaveCommand.Build(),
            RestoreCommand.Build(),
            MigrateCommand.Build(),
            MigrateReceiveCommand.Build(),
            ProtectCommand.Build(),
            InfoCommand.Build(),
            HiddenVmmCommand.Build(),
        };
        // A fixed help width: asking the terminal for its width would make .NET initialize it (escape codes).
        foreach (var help in root.Options.OfType<System.CommandLine.Help.HelpOption>())
            if (help.Action is System.CommandLine.Help.HelpAction action) action.MaxWidth = 120;
        return root;
    }

    public static int Run(string[] args)
    {
        var root = BuildRoot();
        var parse = root.Parse(RunCommand.SeparateProgramArguments(args), new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            var command = parse.CommandResult.Command;
            var hint = command is RootCommand ? "remus --help" : $"remus {command.Name} --help";
            return Cli.Fail($"{parse.Errors[0].Message} (see '{hint}')", Cli.UsageStatus);
        }
        return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = StdStreams.Out, Error = StdStreams.Error });
    }
}
