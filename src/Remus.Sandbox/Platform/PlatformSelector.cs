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

    /// <summary>A vCPU of exactly <paramref name="kind"/> (Kvm or Ptrace), no self-test.</summary>
    public static IVcpu Create(GuestMemory memory, PlatformKind kind) => kind switch
    {
        PlatformKind.Kvm => KvmPlatformAvailable(out string reason)
            ? new KvmPlatformVcpu(memory)
            : throw new SandboxException($"cannot use KVM: {reason}"),
        PlatformKind.Ptrace => new PtraceVcpu(memory),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "a concrete platform"),
    };
}
