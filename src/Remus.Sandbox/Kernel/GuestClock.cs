using System.Diagnostics;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The guest's clocks. CLOCK_REALTIME is the host's; CLOCK_MONOTONIC is the host's monotonic clock plus an offset
/// that checkpoints carry, so it never goes back when a domain moves to another host or is restored later.
/// The CPU-time clocks are the vCPU's CPU time plus an offset that checkpoints carry (a new vCPU starts near 0).
/// </summary>
internal sealed class GuestClock
{
    private static readonly double TicksToNs = 1e9 / Stopwatch.Frequency;

    /// <summary>Added to the host's monotonic time (ns).</summary>
    public long MonotonicOffsetNs { get; set; }

    public static long HostMonotonicNs => (long)(Stopwatch.GetTimestamp() * TicksToNs);

    public long MonotonicNs => HostMonotonicNs + MonotonicOffsetNs;

    public static long RealtimeNs => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>Added to the vCPU's CPU time (ns): what the program used before this vCPU (on earlier hosts).</summary>
    public long CpuOffsetNs { get; set; }

    /// <summary>Makes the monotonic clock read <paramref name="guestNs"/> now (restore on another host).</summary>
    public void ContinueFrom(long guestNs) => MonotonicOffsetNs = guestNs - HostMonotonicNs;
}
