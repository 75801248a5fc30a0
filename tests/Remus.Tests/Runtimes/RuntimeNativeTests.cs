using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Runtimes;

/// <summary>
/// The native half of <see cref="GoRustTests"/>, checked on its own today: each Go and Rust guest builds with the
/// toolchain .ci/run installs, exits as expected and prints the same bytes on every run (so a domain run can be
/// compared with it byte for byte). Skipped with the reason where the toolchain is missing.
/// </summary>
public sealed class RuntimeNativeTests
{
    public static TheoryData<string> Cases()
    {
        var d = new TheoryData<string>();
        foreach (var name in RuntimeCatalog.Names) d.Add(name);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Native_run_is_deterministic_and_as_expected(string name)
    {
        var c = RuntimeCatalog.Get(name);
        RuntimeBuilder.Require(c.Language);
        var inv = c.Invocation();

        var first = NativeRun.Run(inv);
        Assert.True(first.ExitCode == c.ExpectedExit, $"expected exit {c.ExpectedExit}:\n{first}");
        Assert.True(first.Stdout.Length > 0, $"nothing on stdout:\n{first}");
        var second = NativeRun.Run(inv);
        Assert.True(GuestAssert.Diff(first.Stdout, second.Stdout) is null,
            $"stdout differs between two native runs: {GuestAssert.Diff(first.Stdout, second.Stdout)}\n{first}\n{second}");
        Assert.Equal(RuntimeCatalog.NormalizeStderr(first.Stderr), RuntimeCatalog.NormalizeStderr(second.Stderr));
        Assert.Equal(first.ExitCode, second.ExitCode);
        Assert.DoesNotContain("wrong", first.StdoutText, StringComparison.Ordinal);
        if (c.StderrContains is { } expected) Assert.Contains(expected, RuntimeCatalog.NormalizeStderr(first.Stderr), StringComparison.Ordinal);
        else if (c.Language == RuntimeLanguage.Go) Assert.True(first.Stderr.Length == 0, $"a Go guest wrote to stderr:\n{first}");
    }

    /// <summary>The continuity program: four counters, each going up by one per line, then "done".</summary>
    [SkippableFact]
    public void Counter_prints_four_unbroken_counts()
    {
        RuntimeBuilder.Require(RuntimeLanguage.Go);
        var r = NativeRun.Run(new GuestInvocation(RuntimeBuilder.Build(RuntimeLanguage.Go, "counter")) { Args = ["5", "10"] });
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.StdoutText.TrimEnd('\n').Split('\n');
        Assert.Equal("done", lines[^1]);
        var counts = CounterLines.Parse(lines[..^1]);
        for (int g = 0; g < 4; g++) Assert.Equal([1, 2, 3, 4, 5], counts[g]);
        CounterLines.AssertClocksNeverGoBack(lines[..^1]);
    }
}

/// <summary>Reads the counter program's lines: "g G n N t UNIX_NS".</summary>
public static class CounterLines
{
    /// <summary>Each goroutine's counters in the order printed.</summary>
    public static List<long>[] Parse(IEnumerable<string> lines)
    {
        var counts = new List<long>[4];
        for (int i = 0; i < 4; i++) counts[i] = [];
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            if (f.Length != 6 || f[0] != "g" || f[2] != "n" || f[4] != "t") throw new FormatException($"not a counter line: '{line}'");
            counts[int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture)].Add(long.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture));
        }
        return counts;
    }

    /// <summary>Each goroutine's wall-clock stamps never decrease.</summary>
    public static void AssertClocksNeverGoBack(IEnumerable<string> lines)
    {
        var last = new long[4];
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            int g = int.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture);
            long t = long.Parse(f[5], System.Globalization.CultureInfo.InvariantCulture);
            Xunit.Assert.True(t >= last[g], $"goroutine {g}'s clock went back: '{line}'");
            last[g] = t;
        }
    }
}
