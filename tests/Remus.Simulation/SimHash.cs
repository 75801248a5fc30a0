namespace Remus.Simulation;

/// <summary>SplitMix64: the one hash every seeded choice of the harness and the simulated guest derives from.</summary>
public static class SimHash
{
    public static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }

    public static ulong Of(ulong a, ulong b) => Mix(Mix(a) ^ b);
    public static ulong Of(ulong a, ulong b, ulong c) => Mix(Of(a, b) ^ c);
}
