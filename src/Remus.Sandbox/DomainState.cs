namespace Remus.Sandbox;

public enum DomainState
{
    /// <summary>Built, not started yet.</summary>
    Created,
    Running,
    Paused,
    /// <summary>The program has exited (see <see cref="SandboxDomain.ExitStatus"/>).</summary>
    Exited,
}
