using Remus.Sandbox.Platform.Kvm;
using Remus.Sandbox.Platform.Ptrace;

namespace Remus.Sandbox.Platform;

/// <summary>Builds the vCPU of the chosen platform. Called on the thread that will run it.</summary>
internal static class PlatformSelector
{
    public static PlatformKind Resolve(PlatformKind kind)
    {
        if (kind != PlatformKind.Auto) return kind;
        return Environment.GetEnvironmentVariable("REMUS_PLATFORM")?.ToLowerInvariant() switch
        {
            "kvm" => PlatformKind.Kvm,
            "ptrace" => PlatformKind.Ptrace,
            _ => KvmPlatformAvailable(out _) ? PlatformKind.Kvm : PlatformKind.Ptrace,
        };
    }

    /// <summary>True when /dev/kvm is usable and offers every capability the KVM platform needs (probed once);
    /// otherwise <paramref name="reason"/> is one line saying what is missing.</summary>
    public static bool KvmPlatformAvailable(out string reason) => KvmPlatform.IsAvailable(out reason);

    public static IVcpu CreateVcpu(GuestMemory memory, PlatformKind kind)
    {
        switch (Resolve(kind))
        {
            case PlatformKind.Kvm:
                if (!KvmPlatformAvailable(out string reason)) throw new SandboxException($"cannot use KVM: {reason}");
                return new KvmPlatformVcpu(memory);
            default:
                return new PtraceVcpu(memory);
        }
    }
}
