using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// <see cref="SandboxDomain.PauseForCapture"/> (the Remus pause: the vCPU thread captures its states as it parks):
/// what <see cref="SandboxDomain.CaptureStates(CapturedStates)"/> then hands back is what a separate visit to the
/// paused vCPU thread reads, pause after pause; with more than one thread it is dropped and every thread is captured.
/// On each platform this machine has.
/// </summary>
public class PauseForCaptureTests
{
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void The_capture_taken_at_the_park_equals_a_later_one_in_the_same_pause(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("ticker"), Args = ["100000", "1"], MemoryMiB = 32, Platform = platform };
        using var d = new RunningDomain(SandboxDomain.Create(spec, new RecordingConsole()));
        var into = new CapturedStates();
        for (int i = 0; i < 30; i++)
        {
            Thread.Sleep(3);
            d.Domain.PauseForCapture(into);
            var (vcpus, kernel) = d.Domain.CaptureStates(); // a visit of its own, after the park's capture
            d.Domain.CaptureStates(into);
            Assert.Equal(1, into.VcpuCount);
            Assert.True(into.Vcpu(0).SequenceEqual(vcpus[0]), $"pause {i}: the vCPU state taken at the park differs");
            // The kernel state opens with its clocks as read at the capture (KernelSnapshot: magic, version, the guest's
            // monotonic clock, the host's since start, the program's CPU time): the park's are the earlier readings,
            // closer to the instant the program stopped. Everything after them is the same.
            const int clocks = 8 + 3 * 8;
            Assert.True(into.Kernel[clocks..].SequenceEqual(kernel.AsSpan(clocks)), $"pause {i}: the kernel state taken at the park differs");
            for (int c = 8; c < clocks; c += 8)
                Assert.True(BitConverter.ToInt64(into.Kernel[c..]) <= BitConverter.ToInt64(kernel, c), $"pause {i}: clock at byte {c} read later at the park");
            d.Domain.Unpause();
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void With_several_threads_every_thread_is_captured(PlatformKind platform)
    {
        Threads.Require(platform);
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("thread_counter"), Args = ["4", "100000", "5"], MemoryMiB = 64, Platform = platform };
        var console = new RecordingConsole();
        using var d = new RunningDomain(SandboxDomain.Create(spec, console));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!console.Text.Contains("t3 ") && DateTime.UtcNow < deadline) Thread.Sleep(10); // every thread runs
        Assert.Contains("t3 ", console.Text);
        var into = new CapturedStates();
        for (int i = 0; i < 5; i++)
        {
            d.Domain.PauseForCapture(into);
            d.Domain.CaptureStates(into);
            Assert.Equal(5, into.VcpuCount); // main and its four counters
            d.Domain.Unpause();
            Thread.Sleep(5);
        }
    }
}
