using System.CommandLine;
using Remus.Toolstack.Vmm;

namespace Remus.Cli.Commands;

/// <summary>
/// <c>remus __vmm</c> (hidden): the body of a detached VMM process, started by 'remus create'. It reads its start
/// request (JSON) from stdin and reports ready or its error on stdout before it detaches.
/// </summary>
internal static class HiddenVmmCommand
{
    public static Command Build()
    {
        var command = new Command(VmmCommand.Verb, "Internal: a domain's detached VMM process.") { Hidden = true };
        command.SetAction(_ => VmmProcess.RunDetached());
        return command;
    }
}
