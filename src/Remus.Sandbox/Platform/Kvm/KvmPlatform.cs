using Remus.Kvm;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>Whether this host can run the KVM platform: a usable /dev/kvm with every capability the vCPU relies on.</summary>
internal static class KvmPlatform
{
    /// <summary>KVM_CAP_SYNC_REGS (&lt;linux/kvm.h&gt;; not in Remus.Kvm's constant table): kvm_run.s.regs carries the
    /// registers out on every exit and in on the next entry, saving KVM_GET_REGS/KVM_SET_REGS per syscall.</summary>
    public const int KVM_CAP_SYNC_REGS = 74;
    /// <summary>KVM_SYNC_X86_REGS: the struct kvm_regs part of kvm_run.s.regs.</summary>
    public const ulong KVM_SYNC_X86_REGS = 1;

    /// <summary>The capabilities the platform needs, with what each is for.</summary>
    public static readonly (int Capability, string Name)[] Required =
    [
        (KvmConstants.KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY (guest RAM from our memfd)"),
        (KvmConstants.KVM_CAP_SYNC_MMU, "KVM_CAP_SYNC_MMU (guest RAM pages released with hole punching)"),
        (KvmConstants.KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID (KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2)"),
        (KvmConstants.KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT (kicking the vCPU)"),
        (KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS (registers in kvm_run)"),
        (KvmConstants.KVM_CAP_XSAVE, "KVM_CAP_XSAVE (FPU/SSE/AVX state in checkpoints)"),
        (KvmConstants.KVM_CAP_XCRS, "KVM_CAP_XCRS (XCR0 for AVX)"),
        (KvmConstants.KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE (vCPU state in checkpoints)"),
        (KvmConstants.KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS (vCPU state in checkpoints)"),
        (KvmConstants.KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS (vCPU state in checkpoints)"),
    ];

    private static readonly Lazy<(bool Ok, string Reason)> s_probe = new(Probe);

    /// <summary>True when the KVM platform can run here; otherwise <paramref name="reason"/> is one line saying why.
    /// Probed once per process.</summary>
    public static bool IsAvailable(out string reason)
    {
        var (ok, why) = s_probe.Value;
        reason = why;
        return ok;
    }

    private static (bool, string) Probe()
    {
        if (!KvmSystem.IsAvailable(out string reason)) return (false, reason);
        try
        {
            using var kvm = KvmSystem.Open();
            return MissingCapability(kvm) is { } missing ? (false, missing) : (true, "");
        }
        catch (KvmUnavailableException e)
        {
            return (false, e.Message);
        }
        catch (KvmException e)
        {
            return (false, $"{KvmSystem.DefaultPath}: {e.Message}");
        }
    }

    /// <summary>The first thing the platform needs that <paramref name="kvm"/> lacks, as one line, or null.</summary>
    public static string? MissingCapability(KvmSystem kvm)
    {
        foreach (var (cap, name) in Required)
            if (kvm.CheckExtension(cap) <= 0) return $"{kvm.Path} lacks {name}";
        if (((ulong)kvm.CheckExtension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) == 0)
            return $"{kvm.Path}: KVM_CAP_SYNC_REGS does not include KVM_SYNC_X86_REGS";
        return CpuConfig.Unsuitable(kvm.GetSupportedCpuid()) is { } why ? $"{kvm.Path}: {why}" : null;
    }
}
