using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.Runtimes;

/// <summary>
/// Go and Rust programs this project did not write for its kernel print in a domain exactly what they print natively
/// (stdout bytes, exit status, stderr up to thread ids), on every platform (issue 8 item 6). They need the paged
/// address space (Go reserves GiBs of PROT_NONE at start-up) and threads (every Go program starts several); the
/// native halves alone are in <see cref="RuntimeNativeTests"/>.
/// </summary>
public sealed class GoRustTests
{
    public static TheoryData<string, PlatformKind> Cases()
    {
        var d = new TheoryData<string, PlatformKind>();
        foreach (var platform in Platforms.Each)
            foreach (var name in RuntimeCatalog.Names)
                d.Add(name, platform);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Domain_run_matches_native_run(string name, PlatformKind platform)
    {
        Platforms.Require(platform);
        var c = RuntimeCatalog.Get(name);
        RuntimeBuilder.Require(c.Language);
        var inv = c.Invocation() with { Platform = platform };

        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == c.ExpectedExit, $"the native run itself is off (expected exit {c.ExpectedExit}):\n{native}");
        var domain = RemusCli.Run(inv, TimeSpan.FromSeconds(120));

        var problems = new List<string>();
        if (native.ExitCode != domain.ExitCode) problems.Add($"exit status: native {native.ExitCode}, domain {domain.ExitCode}");
        if (GuestAssert.Diff(native.Stdout, domain.Stdout) is string o) problems.Add("stdout: " + o);
        if (RuntimeCatalog.NormalizeStderr(native.Stderr) != RuntimeCatalog.NormalizeStderr(domain.Stderr)) problems.Add("stderr differs");
        if (problems.Count > 0)
            throw new XunitException($"domain run differs from native run ({string.Join("; ", problems)})\ncommand: {inv}\n" +
                                     $"=== native ===\n{native}\n=== domain ===\n{domain}");
    }

    /// <summary>The continuity program in a domain: four goroutines' counters, each unbroken, then "done".</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Counter_runs_unbroken_in_a_domain(PlatformKind platform)
    {
        Platforms.Require(platform);
        RuntimeBuilder.Require(RuntimeLanguage.Go);
        var inv = new GuestInvocation(RuntimeBuilder.Build(RuntimeLanguage.Go, "counter")) { Args = ["5", "10"], MemoryMiB = 512, Platform = platform };
        var r = RemusCli.Run(inv, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.StdoutText.TrimEnd('\n').Split('\n');
        Assert.Equal("done", lines[^1]);
        var counts = CounterLines.Parse(lines[..^1]);
        for (int g = 0; g < 4; g++) Assert.Equal([1, 2, 3, 4, 5], counts[g]);
    }

    /// <summary>
    /// Continuity (issue 8 item 6): the 4-goroutine counter saved and restored into a new domain every 150 ms keeps
    /// each goroutine's count unbroken (1..COUNT, each once, in order) and its wall clock never going back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Counter_keeps_unbroken_counts_through_a_chain_of_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        RuntimeBuilder.Require(RuntimeLanguage.Go);
        var spec = new DomainSpec
        {
            ProgramPath = RuntimeBuilder.Build(RuntimeLanguage.Go, "counter"), Args = ["40", "25"], MemoryMiB = 512, Platform = platform,
        };
        var console = new RecordingConsole();
        var (status, restores) = KernelStateAcrossCheckpointsTests.RunThroughSaveRestoreChain(spec, console, 150);
        Assert.Equal(0, status);
        Assert.True(restores >= 2, $"only {restores} restores");
        var lines = console.Text.TrimEnd('\n').Split('\n');
        Assert.Equal("done", lines[^1]);
        var counts = CounterLines.Parse(lines[..^1]);
        for (int g = 0; g < 4; g++) Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), counts[g]);
        CounterLines.AssertClocksNeverGoBack(lines[..^1]);
    }
}
