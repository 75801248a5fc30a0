using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// C pthreads programs (tests/guests/pthreads.c: mutex, condvar, barrier, __thread, join with exit values, tgkill
/// between threads, a futex timeout, a pipe between threads, 200 threads made and joined) print exactly what they
/// print natively, with glibc and musl, on every platform that runs threads.
/// </summary>
public sealed class ThreadParityTests
{
    public static TheoryData<GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs) d.Add(f, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Pthreads_program_matches_native(GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build("pthreads", flavor)) { Platform = platform };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }
}
