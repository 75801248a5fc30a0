using Remus.Sandbox.Platform.Kvm;
using Remus.Sandbox.Platform.Ptrace;

namespace Remus.Sandbox.Platform;

/// <summary>Builds the vCPU of the chosen platform. Called on the thread that will run it.</summary>
internal static class PlatformSelector
{
    /// <summary>True when /dev/kvm is usable and offers every capability the KVM platform needs (probed once);
    /// otherwise <paramref name="reason"/> is one line saying what is missing.</summary>
    public static bool KvmPlatformAvailable(out string reason) => KvmPlatform.IsAvailable(out reason);

    /// <summary>Chooses the platform (<see cref="PlatformSelection.Choose"/>) and builds its vCPU over
    /// <paramref name="memory"/>.</summary>
    /// <exception cref="SandboxException">a forced KVM that is missing or failed its self-test (one line).</exception>
    public static IVcpu CreateVcpu(GuestMemory memory, PlatformKind kind, out PlatformChoice choice)
    {
        choice = PlatformSelection.Choose(kind);
        return Create(memory, choice.Kind);
    }

    /// <summary>
    /// Whether <paramref name="kind"/> runs the program in the paged model (a 47-bit address space over page tables
    /// in guest RAM, frames on first touch; docs/memory.md): both do (the platform self-tests run identity-mapped).
    /// </summary>
    public static bool RunsPaged(PlatformKind kind) => kind is PlatformKind.Ptrace or PlatformKind.Kvm;

    /// <summary>A vCPU of exactly <paramref name="kind"/> (Kvm or Ptrace), no self-test; <paramref name="paged"/>:
    /// the program's address space is paged (<see cref="RunsPaged"/>), else guest virtual = physical.</summary>
    public static IVcpu Create(GuestMemory memory, PlatformKind kind, bool paged = false) => kind switch
    {
        PlatformKind.Kvm => KvmPlatformAvailable(out string reason)
            ? new KvmPlatformVcpu(memory, paged)
            : throw new SandboxException($"cannot use KVM: {reason}"),
        PlatformKind.Ptrace => new PtraceVcpu(memory, paged),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "a concrete platform"),
    };
}
