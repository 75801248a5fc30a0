using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// Record locks and flocks in a domain print exactly what they print natively, with glibc and musl, on each platform:
/// tests/guests/locks/locks_ro.c on a file the domain sees read-only (`files`) — the checks in Linux's order (EBADF for
/// the access mode, EINVAL for bad types, whence, ranges, an OFD l_pid, F_GETLK with F_UNLCK), POSIX locks of the one
/// process never conflicting (F_GETLK: F_UNLCK), merged and split; OFD locks reported with l_pid -1, conflicting with the
/// process's POSIX locks; closing any fd dropping the POSIX locks; OFD locks and flocks going with their description;
/// flock conflicts (EWOULDBLOCK), non-atomic conversion; a flock blocked in one thread woken by another's unlock or
/// close, interrupted by a handled signal (EINTR without SA_RESTART, restarted with it).
/// </summary>
public sealed class LockParityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("remus-locks-").FullName;

    public static TheoryData<string, GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<string, GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs)
                d.Add("locks_ro", f, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Lock_program_matches_native(string guest, GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        string file = Path.Combine(_dir, "locked.bin");
        File.WriteAllBytes(file, new byte[1000]);
        var inv = new GuestInvocation(GuestBuilder.Build("locks/" + guest, flavor))
        {
            Platform = platform,
            Args = [file],
            Files = [file],
        };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
