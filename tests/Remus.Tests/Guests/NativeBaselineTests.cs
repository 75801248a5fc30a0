using System.Text.RegularExpressions;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// The native half of the parity tests, checked on its own: every guest builds, exits as expected, prints the same
/// bytes on every run (nothing time-, pid- or address-dependent), and its sanity checks pass. Needs no sandbox.
/// </summary>
public sealed partial class NativeBaselineTests
{
    public static TheoryData<string, string> Cases => GuestCatalog.CasesByFlavor();

    /// <summary>Programs whose every printed check must come out "yes"/"ok".</summary>
    private static readonly HashSet<string> SanityPrograms = ["clocks", "sleep", "random", "sysinfo", "tls", "malloc_mix", "fpmath", "memtouch"];

    [GeneratedRegex(@"\b(no|NO|FAILED)\b")]
    private static partial Regex FailedCheck();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Native_run_is_deterministic_and_as_expected(string guest, string flavor)
    {
        var c = GuestCatalog.Get(guest);
        var inv = c.Invocation(Enum.Parse<GuestFlavor>(flavor));

        var first = NativeRun.Run(inv);
        Assert.True(first.ExitCode == c.ExpectedExit, $"expected exit {c.ExpectedExit}:\n{first}");
        Assert.True(first.Stdout.Length + first.Stderr.Length > 0, $"no output at all:\n{first}");

        var second = NativeRun.Run(inv);
        Assert.True(GuestAssert.Diff(first.Stdout, second.Stdout) is null, $"stdout differs between two native runs: {GuestAssert.Diff(first.Stdout, second.Stdout)}\n{first}\n{second}");
        Assert.True(GuestAssert.Diff(first.Stderr, second.Stderr) is null, $"stderr differs between two native runs: {GuestAssert.Diff(first.Stderr, second.Stderr)}\n{first}\n{second}");
        Assert.Equal(first.ExitCode, second.ExitCode);

        if (SanityPrograms.Contains(c.Program))
        {
            var bad = first.StdoutText.Split('\n').Where(l => FailedCheck().IsMatch(l)).ToArray();
            Assert.True(bad.Length == 0, "failed checks:\n" + string.Join('\n', bad));
        }
    }

    [Fact]
    public void Native_run_sees_exactly_the_given_argv0_argv_and_environment()
    {
        var inv = GuestCatalog.Get("envargs-full").Invocation(GuestFlavor.Glibc);
        var r = NativeRun.Run(inv);
        Assert.Equal(0, r.ExitCode);
        var lines = r.StdoutText.Split('\n');
        Assert.Contains($"argv[0] <{inv.Program}> len {System.Text.Encoding.UTF8.GetByteCount(inv.Program)}", lines);
        Assert.Contains($"argc {inv.Args.Count + 1}", lines);
        Assert.Contains("argv[3] <> len 0", lines);
        Assert.Contains("argv[6] <--memory> len 8", lines);
        Assert.Contains($"envc {inv.Env.Count}", lines);
        for (int i = 0; i < inv.Env.Count; i++) Assert.Contains($"env[{i}] <{inv.Env[i].Key}={inv.Env[i].Value}>", lines);
        Assert.Contains("getenv PATH unset", lines);
        Assert.Contains("getenv HOME unset", lines);
    }

    [Fact]
    public void Native_run_reports_a_fatal_signal_as_128_plus_signal_and_keeps_earlier_output()
    {
        var r = NativeRun.Run(GuestCatalog.Get("crash-segv").Invocation(GuestFlavor.Glibc));
        Assert.Equal(139, r.ExitCode);
        Assert.Equal("line 1 before the crash\nline 2 before the crash\nline 3 before the crash\ncrashing with segv\n", r.StdoutText);
        Assert.Equal("err line 1\nerr line 2\nerr line 3\n", r.StderrText);
    }

    [Fact]
    public void Remus_cli_is_in_the_test_output_folder()
    {
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, "remus.dll")), $"remus.dll is not in {AppContext.BaseDirectory}");
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, "remus.runtimeconfig.json")), $"remus.runtimeconfig.json is not in {AppContext.BaseDirectory}");
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "remus.dll"), RemusCli.DllPath);
    }

    [Fact]
    public void Guest_builds_are_cached_by_source_hash()
    {
        var a = GuestBuilder.Build("streams");
        var b = GuestBuilder.Build("streams");
        Assert.Equal(a, b);
        Assert.StartsWith(GuestBuilder.CacheDir, a, StringComparison.Ordinal);
        Assert.True(File.Exists(a));
        if (GuestBuilder.MuslAvailable) Assert.NotEqual(a, GuestBuilder.Build("streams", GuestFlavor.Musl));
    }
}
