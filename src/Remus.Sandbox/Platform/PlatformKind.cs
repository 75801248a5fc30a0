namespace Remus.Sandbox.Platform;

/// <summary>How a domain's vCPU runs the program's ring 3.</summary>
public enum PlatformKind
{
    /// <summary>KVM when /dev/kvm works, else ptrace. The environment variable REMUS_PLATFORM (kvm|ptrace) overrides.</summary>
    Auto,
    /// <summary>A KVM micro-VM (DESIGN.md §2): ring-0 stubs, identity page tables, the dirty log from KVM.</summary>
    Kvm,
    /// <summary>A ptrace'd stub process (gVisor's ptrace platform), for hosts without /dev/kvm.</summary>
    Ptrace,
}
