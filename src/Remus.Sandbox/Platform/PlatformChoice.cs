namespace Remus.Sandbox.Platform;

/// <summary>The platform a domain runs on, and why (for the VMM log and `remus info`).</summary>
public sealed record PlatformChoice(PlatformKind Kind, string Reason)
{
    /// <summary>"kvm", "ptrace" (or "auto").</summary>
    public string Name => PlatformSelection.NameOf(Kind);

    /// <summary>One line: "ptrace (kvm self-test passed, syscall 141 µs vs ptrace 28 µs)".</summary>
    public override string ToString() => $"{Name} ({Reason})";
}
