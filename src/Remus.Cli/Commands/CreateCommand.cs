using System.CommandLine;
using Remus.Toolstack.Config;

namespace Remus.Cli.Commands;

/// <summary><c>remus create [-F] [-p] &lt;config.toml&gt;</c></summary>
internal static class CreateCommand
{
    public static Command Build()
    {
        var foreground = new Option<bool>("--foreground", "-F")
        {
            Description = "Run the VMM in this process, console attached (our stdin, stdout, stderr); exit with the program's status.",
        };
        var paused = new Option<bool>("--paused", "-p") { Description = "Load the program but leave the domain paused (see 'remus unpause')." };
        var config = new Argument<string>("config") { Description = "The domain's config file (TOML): name, memory, program, args, env, files, console_log." };

        var command = new Command("create",
            "Create a domain from a config file. Its VMM runs detached (its console goes to console_log and to 'remus console'); " +
            "remus returns once the program is loaded and the domain registered. When the program exits, the VMM removes the domain.")
        {
            foreground, paused, config,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var domainConfig = ConfigLoader.Load(parse.GetValue(config)!);
            var manager = Cli.Manager();
            if (parse.GetValue(foreground))
                return manager.CreateForeground(domainConfig, parse.GetValue(paused));
            var info = manager.Create(domainConfig, parse.GetValue(paused));
            StdStreams.Out.WriteLine($"Domain '{info.Name}' created: id {info.Id}, VMM pid {info.Pid}, {info.State.ToString().ToLowerInvariant()}.");
            return 0;
        }));
        return command;
    }
}
