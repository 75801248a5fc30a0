using Remus.Toolstack.Config;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>
/// Issue 13: how a receiver's policy is made from the host config and its command line (which overrides it), and
/// the stdin receiver's "no restriction unless something is configured" against the TCP receiver's default deny.
/// </summary>
public sealed class PolicyForReceiverTests
{
    private static HostConfig Host(string toml) => HostConfig.Parse(toml, "/etc/remus/host.toml", "/etc/remus");

    [Fact]
    public void A_tcp_receiver_with_nothing_configured_denies_every_path_and_a_stdin_receiver_restricts_none()
    {
        var empty = Host("");
        var tcp = ReceivePolicy.For(empty, tcp: true);
        Assert.True(tcp.RestrictPaths);
        Assert.Empty(tcp.AllowedPaths);
        var stdin = ReceivePolicy.For(empty, tcp: false);
        Assert.False(stdin.RestrictPaths);
    }

    [Fact]
    public void A_stdin_receiver_applies_allowed_paths_from_the_host_config_or_the_command_line()
    {
        var host = Host("[receive]\nallow_paths = [\"/srv/remus\"]\nmax_memory = 1024\nmax_vcpus = 8\n");
        var fromHost = ReceivePolicy.For(host, tcp: false);
        Assert.True(fromHost.RestrictPaths);
        Assert.Equal(["/srv/remus"], fromHost.AllowedPaths);
        Assert.Equal(1024, fromHost.MaxMemoryMiB);
        Assert.Equal(8, fromHost.MaxVcpus);
        Assert.Equal("/etc/remus/host.toml", fromHost.HostConfigPath);

        var fromCli = ReceivePolicy.For(Host(""), tcp: false, allowPaths: ["/data/vm"]);
        Assert.True(fromCli.RestrictPaths);
        Assert.Equal(["/data/vm"], fromCli.AllowedPaths);
    }

    [Fact]
    public void The_command_line_overrides_the_host_config()
    {
        var host = Host("[receive]\nallow_paths = [\"/srv/remus\"]\nmax_memory = 1024\nmax_vcpus = 8\n");
        var policy = ReceivePolicy.For(host, tcp: true, allowPaths: ["/data/vm"], maxMemoryMiB: 256, maxVcpus: 2);
        Assert.Equal(["/data/vm"], policy.AllowedPaths);
        Assert.Equal(256, policy.MaxMemoryMiB);
        Assert.Equal(2, policy.MaxVcpus);
        Assert.Equal(2, policy.ReaderOptions().MaxVcpuStates);
    }
}
