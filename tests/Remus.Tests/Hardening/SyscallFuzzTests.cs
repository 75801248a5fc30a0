using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// The syscall fuzzer (tests/guests/sysfuzz.c, issue 11 item 2) in a domain on each platform, a short run per seed as CI
/// can afford (the long runs are in docs/reliability.md): random and adversarial arguments from two threads. The VMM
/// must stay up (the run ends with the program's own status, no VMM error on stderr) and every call must come back
/// with a Linux-like result (the program counts any other as "non-linux" and exits 1). Seeds are fixed so a failure
/// replays: `remus run --env SYSFUZZ_IN_DOMAIN=1 --env SYSFUZZ_TRACE=1 sysfuzz SEED CALLS 2` prints each call.
/// </summary>
public sealed class SyscallFuzzTests
{
    public static TheoryData<PlatformKind, int> Cases()
    {
        var d = new TheoryData<PlatformKind, int>();
        foreach (var p in Platforms.Each)
            foreach (int seed in new[] { 1, 2, 3 })
                d.Add(p, seed);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Random_system_calls_leave_the_vmm_up_and_get_linux_results(PlatformKind platform, int seed)
    {
        Threads.Require(platform);
        const int calls = 4000;
        var inv = new GuestInvocation(GuestBuilder.Build("sysfuzz"))
        {
            Platform = platform,
            Args = [seed.ToString(System.Globalization.CultureInfo.InvariantCulture), calls.ToString(System.Globalization.CultureInfo.InvariantCulture), "2"],
            Env = [new("SYSFUZZ_IN_DOMAIN", "1")],
            MemoryMiB = 256,
        };
        var r = RemusCli.Run(inv, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, $"seed {seed} on {Platforms.Name(platform)}: {inv} ended with {r.ExitCode}\nstdout: {r.StdoutText}\nstderr: {r.StderrText}");
        Assert.Contains($"sysfuzz done {2 * calls} calls", r.StdoutText);
        Assert.Contains(" 0 non-linux", r.StdoutText);
    }
}
