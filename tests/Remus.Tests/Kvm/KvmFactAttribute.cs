using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>A [Fact] that is skipped, with the reason, when /dev/kvm cannot be used on this host (or the tests are told
/// to assume so: <see cref="Platforms.AssumeNoKvmVariable"/>; the kvm-lab test then runs these in the lab).</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (!Platforms.KvmDeviceUsable(out string reason)) Skip = "needs KVM: " + reason;
    }
}

/// <summary>A [Theory] skipped like <see cref="KvmFactAttribute"/> (stock KVM and kvm_pvm both count).</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (!Platforms.KvmDeviceUsable(out string reason)) Skip = "needs KVM: " + reason;
    }
}

/// <summary>A [Theory] skipped unless KVM is usable and walks the guest's page tables itself (EPT/NPT: stock KVM, also
/// in kvm-lab): on a shadow MMU (kvm_pvm) the paged address space keeps the translations it would take away, because
/// the flush that works there (a memory-slot re-add for tables) cannot run while sibling vCPUs do (docs/memory.md).</summary>
public sealed class StockKvmTheoryAttribute : TheoryAttribute
{
    public StockKvmTheoryAttribute()
    {
        if (!Platforms.KvmDeviceUsable(out string reason)) Skip = "needs KVM: " + reason;
        else if (Remus.Sandbox.Platform.Kvm.TlbFlush.ForHost() != Remus.Sandbox.Platform.Kvm.TlbFlushMethod.ResetMmu)
            Skip = "KVM shadows the guest's page tables here (kvm_pvm): the paged address space keeps translations it would take away; runs in kvm-lab";
    }
}

/// <summary>A [Fact] that is skipped when no C compiler (gcc) is on PATH.</summary>
public sealed class GccFactAttribute : FactAttribute
{
    public GccFactAttribute()
    {
        if (Gcc.Path is null) Skip = "needs gcc on PATH to compile the C layout probe (install gcc)";
    }
}

internal static class Gcc
{
    public static string? Path { get; } = Find();

    private static string? Find()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = System.IO.Path.Combine(dir, "gcc");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
