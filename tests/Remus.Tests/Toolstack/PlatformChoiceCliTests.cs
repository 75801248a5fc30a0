using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// The platform choice through the real CLI: the VMM log says which platform and why in one line; the config key
/// and `remus run --platform` force one; a forced KVM that cannot be used (missing, or failing its self-test, as on
/// a kvm_pvm host today) is one error line and leaves nothing behind.
/// </summary>
public sealed class PlatformChoiceCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private string Config(string name, string? platform) => _bed.Config($"{name}.toml", $"""
        name = "{name}"
        memory = 16
        program = "{ToolstackGuests.Build("streams", ToolstackGuests.Streams)}"
        args = ["0", "2"]
        {(platform is null ? "" : $"platform = \"{platform}\"")}
        """);

    private string VmmLog() => string.Concat(Directory.GetFiles(Path.Combine(_bed.RunDir, "logs")).Select(File.ReadAllText));

    /// <summary>Whether this host's KVM passes the self-test (the same verdict a VMM process reaches).</summary>
    private static bool KvmUsable => PlatformSelection.KvmAvailable(out _) && PlatformSelection.KvmSelfTest.Passed;

    [Fact]
    public void The_VMM_log_says_which_platform_and_why_in_one_line()
    {
        _bed.Ok("create", "-F", Config("auto", null));
        var lines = VmmLog().Split('\n').Where(l => l.Contains(" platform: ", StringComparison.Ordinal)).ToList();
        Assert.Single(lines);
        Assert.Matches(@" platform: (kvm|ptrace) \(.+\)$", lines[0]);
        if (Environment.GetEnvironmentVariable(PlatformSelection.EnvironmentVariable) is not { Length: > 0 })
        {
            // The same decision as this process's, for the same reason; the measured costs differ from process to process.
            var auto = PlatformSelection.Auto;
            string verdict = auto.Reason.Split(',')[0];
            Assert.Contains($" platform: {auto.Name} ({verdict}", lines[0]);
        }
    }

    [Fact]
    public void The_config_key_forces_ptrace()
    {
        _bed.Ok("create", "-F", Config("traced", "ptrace"));
        Assert.Contains(" platform: ptrace (forced by the domain's platform setting)\n", VmmLog());
    }

    [Fact]
    public void A_forced_KVM_is_used_or_refused_in_one_line()
    {
        if (KvmUsable)
        {
            _bed.Ok("create", "-F", Config("kvm", "kvm"));
            Assert.Contains(" platform: kvm (forced by the domain's platform setting; kvm self-test passed", VmmLog());
            return;
        }
        string line = _bed.Fails("create", Config("kvm", "kvm"));
        Assert.StartsWith("remus: cannot use KVM: ", line);
        if (PlatformSelection.KvmAvailable(out _)) Assert.StartsWith("remus: cannot use KVM: its self-test failed: ", line);
        Assert.Empty(_bed.DomainEntries()); // no half-made domain
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void Run_takes_a_platform_option()
    {
        var streams = ToolstackGuests.Build("streams", ToolstackGuests.Streams);
        var ok = RemusCli.Run(["run", "--platform", "ptrace", streams, "5", "2"]);
        Assert.Equal(5, ok.ExitCode);
        Assert.Equal("out 1\n", ok.StdoutText);

        var bad = RemusCli.Run(["run", "--platform", "xen", streams]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Matches("^remus: --platform wants auto, kvm or ptrace, not 'xen'", bad.StderrText);

        var kvm = RemusCli.Run(["run", "--platform", "kvm", streams, "5", "2"]);
        if (KvmUsable) Assert.Equal(5, kvm.ExitCode);
        else
        {
            Assert.Equal(125, kvm.ExitCode);
            Assert.Matches(new Regex("^remus: cannot use KVM: [^\n]+\n$"), kvm.StderrText);
            Assert.Empty(kvm.StdoutText);
        }
    }
}
