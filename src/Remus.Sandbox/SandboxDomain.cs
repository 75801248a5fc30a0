namespace Remus.Sandbox;

/// <summary>
/// One domain: a micro-VM running one static program whose system calls this process serves.
/// Create() validates and loads; Run() drives the vCPU on the calling thread until the program exits;
/// Pause/Unpause/Kill may be called from any other thread.
/// </summary>
public sealed partial class SandboxDomain : IDisposable
{
    /// <summary>
    /// Validates the program (a clear <see cref="SandboxException"/> for a missing, non-ELF, 32-bit, dynamically
    /// linked or too large program), builds the VM and loads the program. Nothing is left behind on failure.
    /// </summary>
    public static SandboxDomain Create(DomainSpec spec, IConsole console) => throw new NotImplementedException();

    public DomainSpec Spec { get; }

    public DomainState State { get; }

    /// <summary>The exit status once <see cref="State"/> is Exited: 0-255, or 128+signal for a fatal signal.</summary>
    public int ExitStatus { get; }

    /// <summary>Runs the program on the calling thread until it exits; returns its exit status.</summary>
    public int Run() => throw new NotImplementedException();

    /// <summary>Stops the vCPU and returns once it is stopped (idempotent).</summary>
    public void Pause() => throw new NotImplementedException();

    /// <summary>Lets a paused vCPU go on (idempotent).</summary>
    public void Unpause() => throw new NotImplementedException();

    /// <summary>Ends the program as SIGKILL would (exit status 137); Run() returns soon after.</summary>
    public void Kill() => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
