using System.Runtime.Intrinsics.X86;

namespace Remus.Sandbox.Loader;

/// <summary>AT_HWCAP: CPUID leaf 1 EDX, as Linux reports it on x86-64.</summary>
internal static class CpuFeatures
{
    public static ulong Hwcap { get; } = X86Base.IsSupported ? (uint)X86Base.CpuId(1, 0).Edx : 0;
}
