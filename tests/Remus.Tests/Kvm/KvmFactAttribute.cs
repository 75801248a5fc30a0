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
