namespace Remus.Sandbox.Platform;

/// <summary>What a platform can run in one domain, asked of a throwaway vCPU once per process.</summary>
public static class PlatformCapacity
{
    private static readonly Dictionary<PlatformKind, int> s_maxVcpus = [];

    /// <summary><see cref="IVcpu.MaxVcpus"/> of <paramref name="kind"/> (which must be available here).</summary>
    public static int MaxVcpus(PlatformKind kind)
    {
        lock (s_maxVcpus)
        {
            if (s_maxVcpus.TryGetValue(kind, out int n)) return n;
            using var memory = new GuestMemory(4 << 20);
            using (var vcpu = PlatformSelector.Create(memory, kind)) n = vcpu.MaxVcpus;
            s_maxVcpus[kind] = n;
            return n;
        }
    }
}
