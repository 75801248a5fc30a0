using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// A program that tries to exhaust memory, fds and threads (tests/guests/exhaust.c; issue 11 item 4) gets Linux's
/// errors — ENOMEM, EMFILE, EAGAIN — at the bounds its domain's config sets, and the VMM stays up. Where the
/// behaviour is Linux's (fds under RLIMIT_NOFILE) the output is compared with the program's native output; where the
/// bound is ours (RAM, max_threads, max_fds) the program checks it against the configured value.
/// </summary>
public sealed class LimitsExhaustTests
{
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Fds_run_out_with_EMFILE_at_RLIMIT_NOFILE_as_natively(PlatformKind platform)
    {
        Platforms.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build("exhaust")) { Args = ["fds"], Platform = platform };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Memory_runs_out_with_ENOMEM_within_the_domains_RAM(PlatformKind platform)
    {
        Platforms.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build("exhaust")) { Args = ["memory", "48"], MemoryMiB = 48, Platform = platform };
        var r = RemusCli.Run(inv, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, $"{inv} ended with {r.ExitCode}\nstdout: {r.StdoutText}\nstderr: {r.StderrText}");
        Assert.Contains("mmap stops with ENOMEM: yes", r.StdoutText);
        Assert.Contains("all checks held", r.StdoutText);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Threads_past_max_threads_get_EAGAIN(PlatformKind platform)
    {
        Threads.Require(platform);
        var world = new RecordingConsole();
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("exhaust"), Args = ["threads"], MemoryMiB = 64, Platform = platform, MaxThreads = 6 };
        using var d = new RunningDomain(SandboxDomain.Create(spec, world));
        int status = d.Wait(TimeSpan.FromSeconds(120));
        Assert.True(status == 0, $"exit {status}: {world.Text}");
        Assert.Contains("created 5 besides main, then EAGAIN", world.Text);
        Assert.Contains("all checks held", world.Text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Max_fds_is_the_programs_RLIMIT_NOFILE(PlatformKind platform)
    {
        Platforms.Require(platform);
        var world = new RecordingConsole();
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("exhaust"), Args = ["fds", "show"], MemoryMiB = 32, Platform = platform, MaxFds = 100 };
        using var d = new RunningDomain(SandboxDomain.Create(spec, world));
        int status = d.Wait(TimeSpan.FromSeconds(120));
        Assert.True(status == 0, $"exit {status}: {world.Text}");
        Assert.Contains("soft limit 100, hard limit 100", world.Text);
        Assert.Contains("all checks held", world.Text);
    }

    [Fact]
    public void Limits_out_of_range_are_refused_before_a_domain_is_built()
    {
        string prog = GuestBuilder.Build("exhaust");
        var e = Assert.Throws<SandboxException>(() => SandboxDomain.Create(new DomainSpec { ProgramPath = prog, MaxFds = 4 }, new RecordingConsole()));
        Assert.Contains("max_fds must be between 8 and 1024", e.Message);
        e = Assert.Throws<SandboxException>(() => SandboxDomain.Create(new DomainSpec { ProgramPath = prog, MaxThreads = 0 }, new RecordingConsole()));
        Assert.Contains("max_threads must be between 1 and 512", e.Message);
    }
}
