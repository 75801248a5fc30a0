namespace Remus.Tests.Support;

/// <summary>
/// How much longer a process the tests start may take before it counts as hung: 1 normally; 10 inside kvm-lab
/// (<c>KVMLAB_GUEST=1</c>: stock KVM under QEMU TCG, where everything runs 10-50x slower); or
/// <c>REMUS_TEST_TIMEOUT_SCALE</c> when set. These timeouts only catch hangs, they never time a result.
/// <para>Measured in the lab on a loaded 2-core host (issue 7, "memtouch times out in lab"): <c>remus run</c> of a
/// program that exits at once takes 8.6-14.5 s there (0.25-0.5 s on the host), which leaves a 20 s budget a few
/// seconds for the program; memtouch 40 spends 2.8-3.4 s in the guest on KVM there (native in the lab 0.75-1.6 s;
/// first touch ~300 µs per page, linear from 8 to 40 MiB), so it and even the trivial `files` probe ran out of time.</para>
/// </summary>
public static class TestTimeouts
{
    public static double Scale { get; } = ReadScale();

    /// <summary><paramref name="timeout"/> times <see cref="Scale"/> (infinite stays infinite).</summary>
    public static TimeSpan Scaled(TimeSpan timeout) =>
        timeout == Timeout.InfiniteTimeSpan || Scale == 1 ? timeout : timeout * Scale;

    private static double ReadScale()
    {
        if (double.TryParse(Environment.GetEnvironmentVariable("REMUS_TEST_TIMEOUT_SCALE"), System.Globalization.CultureInfo.InvariantCulture, out double s) && s >= 1)
            return s;
        return Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1" ? 10 : 1;
    }
}
