using System.Diagnostics;
using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Tests.EndToEnd;
using Remus.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Kvm;

/// <summary>
/// On a machine without a usable KVM the KVM tests skip here; this test runs them in kvm-lab instead (stock KVM on
/// an emulated AMD SVM CPU, ../shared/kvm-lab/kvm-lab or $KVMLAB): the KVM-specific tests plus one Remus failover on
/// KVM, as `dotnet test` of this very (already built) test assembly inside the lab, and asserts that run passed.
/// The failover is the engine's (primary and backup in one process over loopback TCP, the vecregs guest keeping
/// xmm/ymm/zmm values live across it), not the CLI's: in the lab every .NET process start takes 5-20 s (TCG), so
/// the CLI round (create, protect, a receiver, two VMMs) outruns its own time limits (`remus create` did not finish
/// within 60 s there), while what it adds to the engine's (process plumbing) is the same on every platform and
/// tested here. Everything in the lab is 10-50x slower, so the selection is kept to minutes. It runs alone (the
/// end-to-end collection runs after the parallel tests): the lab takes both cores.
/// Elsewhere it is skipped with the reason: KVM is here (the tests ran on it), we are inside the lab already
/// (KVMLAB_GUEST=1), or there is no kvm-lab. REMUS_TEST_ASSUME_NO_KVM=1 makes a KVM machine act as one without.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class KvmLabTests(ITestOutputHelper output)
{
    /// <summary>What runs in the lab: the KVM tests (namespaces Remus.Tests.Kvm and Remus.Tests.Sandbox.Kvm, this
    /// test excluded) and the KVM row of <see cref="Checkpoint.RemusEngineTests.Live_vector_registers_survive_a_failover"/>.</summary>
    public const string Filter =
        "((FullyQualifiedName~Remus.Tests.Kvm.|FullyQualifiedName~Remus.Tests.Sandbox.Kvm.)&FullyQualifiedName!~Remus.Tests.Kvm.KvmLabTests)" +
        "|(FullyQualifiedName=" + Failover + "&DisplayName~platform: Kvm)";

    private const string Failover = "Remus.Tests.Checkpoint.RemusEngineTests.Live_vector_registers_survive_a_failover";

    /// <summary>Replaces <see cref="Filter"/> (to try the lab with another selection by hand).</summary>
    public const string FilterVariable = "REMUS_KVMLAB_FILTER";

    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(12);

    /// <summary>The kvm-lab script: $KVMLAB, else shared/kvm-lab/kvm-lab beside the repository.</summary>
    public static string LabPath =>
        Environment.GetEnvironmentVariable("KVMLAB") is { Length: > 0 } set
            ? set
            : Path.GetFullPath(Path.Combine(GuestBuilder.RepoRoot, "..", "shared", "kvm-lab", "kvm-lab"));

    [SkippableFact]
    public void The_KVM_tests_and_a_KVM_failover_pass_in_kvm_lab_when_this_machine_has_no_KVM()
    {
        Skip.If(Environment.GetEnvironmentVariable("KVMLAB_GUEST") == "1", "running inside kvm-lab already");
        bool kvmHere = Platforms.Has(PlatformKind.Kvm, out string why);
        Skip.If(kvmHere, "this machine has a usable KVM: the KVM tests ran here, not in kvm-lab");
        Skip.IfNot(File.Exists(LabPath), $"no usable KVM here ({why}) and no kvm-lab at {LabPath} (set KVMLAB)");

        string assembly = typeof(KvmLabTests).Assembly.Location;
        string filter = Environment.GetEnvironmentVariable(FilterVariable) is { Length: > 0 } f ? f : Filter;
        var args = new List<string>
        {
            "--timeout", "660", "--",
            // The lab passes our environment on: the lab's own /dev/kvm is to be used, not assumed away.
            "env", "-u", Platforms.AssumeNoKvmVariable,
            RemusCli.DotnetPath, "test", assembly, "--filter", filter, "--logger", "console;verbosity=normal",
        };
        output.WriteLine($"no usable KVM here ({why}): running in {LabPath}");
        output.WriteLine($"filter: {filter}");
        var watch = Stopwatch.StartNew();
        // The lab shares the working directory read-write and refuses "/"; the repository holds the test assembly.
        var result = ProcessRunner.Run(LabPath, args, stdin: null, Patience, workingDirectory: GuestBuilder.RepoRoot);
        watch.Stop();
        string text = result.StdoutText + result.StderrText;
        output.WriteLine(text);
        string summary = Summary(text);
        output.WriteLine($"kvm-lab run: {watch.Elapsed.TotalSeconds:F0} s, exit {result.ExitCode}: {summary}");
        Console.WriteLine($"kvm-lab: {summary} ({watch.Elapsed.TotalSeconds:F0} s)");

        Assert.True(result.ExitCode == 0, $"the KVM tests failed in kvm-lab (exit {result.ExitCode}):\n{text}");
        var m = Regex.Match(text, @"Passed:\s+(\d+)");
        Assert.True(m.Success && int.Parse(m.Groups[1].Value) > 0, $"kvm-lab ran no test:\n{text}");
        if (filter == Filter)
            Assert.True(text.Contains($"Passed {Failover}(platform: Kvm)", StringComparison.Ordinal),
            $"the KVM failover round did not pass in kvm-lab (skipped, or not selected):\n{text}");
    }

    /// <summary>The runner's closing lines ("Test Run Successful.", "Total tests: 110", "Passed: 110", ...), on one line.</summary>
    private static string Summary(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int start = Array.FindLastIndex(lines, l => l.StartsWith("Test Run ", StringComparison.Ordinal));
        if (start < 0) return lines.LastOrDefault() ?? "(no output)";
        return string.Join(", ", lines.Skip(start).Where(l =>
            l.StartsWith("Test Run ", StringComparison.Ordinal) || Regex.IsMatch(l, @"^(Total tests|Passed|Failed|Skipped|Total time):")));
    }
}
