using Remus.Sandbox;
using Remus.Toolstack.Console;

namespace Remus.Toolstack;

/// <summary>
/// <c>remus run</c>: one program in a domain in this very process, its stdio passed through, no VMM process, no
/// registry entry. Returns the program's exit status (0-255, 128+signal); 141 (SIGPIPE) if our stdout or stderr was
/// closed by its reader while the program wrote.
/// </summary>
public static class ForegroundRunner
{
    public const int BrokenPipeStatus = 128 + 13;

    public static int Run(DomainSpec spec)
    {
        using var console = new StdioConsole();
        using var domain = SandboxDomain.Create(spec, console);
        // Kill from another thread: the write that noticed runs on the vCPU's own thread.
        console.OutputClosed += () => ThreadPool.QueueUserWorkItem(_ => domain.Kill());
        var status = domain.Run();
        return console.IsOutputClosed ? BrokenPipeStatus : status;
    }
}
