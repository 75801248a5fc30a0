using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// C pthreads programs (tests/guests/pthreads.c: mutex, condvar, barrier, __thread, join with exit values, tgkill
/// between threads, a process signal taken by the thread not blocking it, a SIGEV_THREAD_ID timer, a futex timeout, a
/// pipe between threads, 200 threads made and joined; tests/guests/futex_ops.c: every futex operation and its errors,
/// with queued waiters) print exactly what they print natively, with glibc and musl, on every platform that runs threads.
/// </summary>
public sealed class ThreadParityTests
{
    public static TheoryData<string, GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<string, GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs)
                foreach (var g in new[] { "pthreads", "futex_ops" }) d.Add(g, f, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Threaded_program_matches_native(string guest, GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build(guest, flavor)) { Platform = platform };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }
}
