using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>`remus info [--json]`: the host, both platforms with self-test and syscall cost, auto's pick and why.</summary>
public sealed class InfoCommandTests
{
    private static HostInfo Json(IEnumerable<KeyValuePair<string, string>>? env = null)
    {
        var result = RemusCli.Run(["info", "--json"], extraEnvironment: env);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(result.StderrText);
        Assert.Empty(result.LeftBehind);
        return HostInfo.FromJson(result.StdoutText) ?? throw new InvalidOperationException("no JSON");
    }

    [Fact]
    public void Json_describes_the_host_both_platforms_and_what_auto_picks()
    {
        var info = Json();
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), info.Release);
        Assert.Equal("x86_64", info.Machine);
        Assert.False(string.IsNullOrWhiteSpace(info.Cpu));
        Assert.Equal(Environment.ProcessorCount, info.Cpus);
        Assert.False(string.IsNullOrWhiteSpace(info.Version));
        Assert.StartsWith(Path.GetTempPath(), info.RunDirectory); // RemusCli's own REMUS_RUN_DIR
        Assert.Equal(["kvm", "ptrace"], info.Platforms.Select(p => p.Name));

        var ptrace = info.Platforms[1];
        Assert.Equal("passed", ptrace.SelfTest);
        Assert.True(ptrace.SyscallMicros > 0);
        Assert.True(ptrace.SelfTestMs > 0);
        Assert.Equal("userfaultfd write-protect + PAGEMAP_SCAN", ptrace.DirtyLog);

        var kvm = info.Platforms[0];
        Assert.Equal(PlatformSelection.KvmAvailable(out string why), kvm.Available);
        switch (kvm.SelfTest)
        {
            case "not run":
                Assert.Equal(why, kvm.Problem);
                Assert.Equal(new PlatformPick { Platform = "ptrace", Reason = $"no usable KVM: {why}" }, info.Auto);
                break;
            case "failed":
                Assert.False(string.IsNullOrWhiteSpace(kvm.Problem));
                Assert.Equal(new PlatformPick { Platform = "ptrace", Reason = $"kvm self-test failed: {kvm.Problem}" }, info.Auto);
                break;
            default:
                Assert.Equal("passed", kvm.SelfTest);
                Assert.Equal(kvm.SyscallMicros <= ptrace.SyscallMicros / 2 ? "kvm" : "ptrace", info.Auto.Platform); // KVM only when clearly cheaper
                Assert.StartsWith("kvm self-test passed, syscall ", info.Auto.Reason);
                break;
        }
        if (Environment.GetEnvironmentVariable(PlatformSelection.EnvironmentVariable) is not { Length: > 0 })
        {
            Assert.Null(info.RemusPlatform);
            Assert.Equal(info.Auto, info.Default);
            Assert.Equal(info.Platforms.Single(p => p.Name == info.Auto.Platform).DirtyLog, info.DirtyLog);
        }
    }

    [Fact]
    public void REMUS_PLATFORM_shows_as_the_default()
    {
        var info = Json([new(PlatformSelection.EnvironmentVariable, "ptrace")]);
        Assert.Equal("ptrace", info.RemusPlatform);
        Assert.Equal(new PlatformPick { Platform = "ptrace", Reason = "forced by REMUS_PLATFORM=ptrace" }, info.Default);
        Assert.Equal("userfaultfd write-protect + PAGEMAP_SCAN", info.DirtyLog);
    }

    [Fact]
    public void Text_is_key_value_lines_then_a_platform_table()
    {
        var result = RemusCli.Run(["info"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.StdoutText.Split('\n');
        Assert.Contains(lines, l => l == $"release                : {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}");
        Assert.Contains(lines, l => l.StartsWith("platform_auto          : ptrace (", StringComparison.Ordinal)
                                    || l.StartsWith("platform_auto          : kvm (", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("dirty_log              : ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("run_directory          : ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Platform", StringComparison.Ordinal) && l.Contains("Syscall", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("kvm ", StringComparison.Ordinal));
        Assert.Matches(@"\nptrace +passed +[0-9.]+ µs +[0-9.]+ ms", result.StdoutText);
    }
}
