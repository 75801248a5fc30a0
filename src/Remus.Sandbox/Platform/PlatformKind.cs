namespace Remus.Sandbox.Platform;

/// <summary>How a domain's vCPU runs the program's ring 3.</summary>
public enum PlatformKind
{
    /// <summary>REMUS_PLATFORM if set, else KVM when it passes its self-test and its system calls are cheaper than
    /// ptrace's (<see cref="PlatformSelection"/>).</summary>
    Auto,
    /// <summary>A KVM micro-VM (DESIGN.md §2): ring-0 stubs, identity page tables, the dirty log from KVM.</summary>
    Kvm,
    /// <summary>A ptrace'd stub process (gVisor's ptrace platform), for hosts without /dev/kvm.</summary>
    Ptrace,
}
