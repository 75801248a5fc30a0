using Remus.Sandbox.Net;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>The [network] table of a domain config and `remus run --net`: every key read, defaults, one clear line per mistake.</summary>
public sealed class NetworkConfigTests
{
    private static DomainConfig Parse(string network, string name = "web") =>
        ConfigLoader.Parse($"name = \"{name}\"\nprogram = \"/bin/prog\"\n\n[network]\n{network}", "web.toml", "/srv");

    private static string Error(string network) => Assert.Throws<ConfigException>(() => Parse(network)).Message;

    [Fact]
    public void Reads_every_key_into_the_sandbox_spec()
    {
        var config = Parse("""
            tap = "rmweb0"
            address = "10.99.0.2/24"
            gateway = "10.99.0.1"
            host_address = "10.99.0.1/24"
            netns = "rmlab"
            mac = "02:52:4d:00:00:02"
            """);
        var spec = config.ToSpec().Network!;
        Assert.Equal("rmweb0", spec.Tap);
        Assert.Equal("10.99.0.2", spec.Address.ToString());
        Assert.Equal(24, spec.PrefixLength);
        Assert.Equal("10.99.0.1", spec.Gateway.ToString());
        Assert.Equal("10.99.0.1", spec.HostAddress.ToString());
        Assert.Equal(24, spec.HostPrefixLength);
        Assert.Null(spec.Bridge);
        Assert.Equal("rmlab", spec.Netns);
        Assert.Equal(new MacAddress(0x02524D000002), spec.Mac);
    }

    [Fact]
    public void The_default_mac_comes_from_the_domain_name_and_is_kept_in_the_config()
    {
        var config = Parse("tap = \"rmweb0\"\naddress = \"10.99.0.2/24\"\nbridge = \"br0\"\n", name: "web");
        Assert.Equal(MacAddress.FromName("web").ToString(), config.Network!.Mac);
        Assert.Equal("br0", config.ToSpec().Network!.Bridge);
        Assert.Null(config.ToSpec().Network!.Gateway);
        // It travels in checkpoint streams (JSON) as written, so a renamed incoming domain keeps it.
        var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(config with { Name = "web--incoming" }, ToolstackJson.Default.DomainConfig);
        var back = System.Text.Json.JsonSerializer.Deserialize(json, ToolstackJson.Default.DomainConfig)!;
        Assert.Equal(config.Network, back.Network);
        Assert.Equal(MacAddress.FromName("web"), back.ToSpec().Network!.Mac);
    }

    [Fact]
    public void No_table_no_network()
    {
        var config = ConfigLoader.Parse("name = \"a\"\nprogram = \"/bin/prog\"\n", "web.toml", "/srv");
        Assert.Null(config.Network);
        Assert.Null(config.ToSpec().Network);
    }

    [Theory]
    [InlineData("address = \"10.0.0.2/24\"", "web.toml:4: [network] needs 'tap'")]
    [InlineData("tap = \"rmweb0\"", "web.toml:4: [network] needs 'address'")]
    [InlineData("tap = \"a-name-too-long-x\"\naddress = \"10.0.0.2/24\"", "web.toml:5: 'tap' must be a device name of 1 to 15 characters")]
    [InlineData("tap = \"a b\"\naddress = \"10.0.0.2/24\"", "web.toml:5: 'tap' must be a device name")]
    [InlineData("tap = \"a/b\"\naddress = \"10.0.0.2/24\"", "web.toml:5: 'tap' must be a device name")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2\"", "web.toml:6: 'address' must be an IPv4 address with its prefix length")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.256/24\"", "web.toml:6: 'address' must be an IPv4 address with its prefix length")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/33\"", "web.toml:6: 'address' has a bad prefix length \"/33\" (1 to 32)")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/x\"", "web.toml:6: 'address' has a bad prefix length")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.0/24\"", "web.toml:6: 'address' 10.0.0.0/24 is the subnet's own address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.255/24\"", "web.toml:6: 'address' 10.0.0.255/24 is the subnet's broadcast address")]
    [InlineData("tap = \"t0\"\naddress = \"127.0.0.2/8\"", "web.toml:6: 'address' 127.0.0.2 cannot be an interface's address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\ngateway = \"10.0.1.1\"", "web.toml:7: 'gateway' 10.0.1.1 is outside the domain's subnet 10.0.0.0/24")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\ngateway = \"10.0.0.2\"", "web.toml:7: 'gateway' 10.0.0.2 is the domain's own address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\ngateway = \"gw\"", "web.toml:7: 'gateway' must be an IPv4 address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nhost_address = \"10.0.0.1\"", "web.toml:7: 'host_address' must be an IPv4 address with its prefix length")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nhost_address = \"10.0.0.2/24\"", "web.toml:7: 'host_address' 10.0.0.2 is the domain's own address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nhost_address = \"10.0.9.1/24\"", "web.toml:7: 'host_address' 10.0.9.1 is outside the domain's subnet")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nhost_address = \"10.0.0.1/24\"\nbridge = \"br0\"", "web.toml:8: 'host_address' and 'bridge' cannot both be set")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nnetns = \"a/b\"", "web.toml:7: 'netns' must be a network namespace name")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nmac = \"02:52:4d:00:00\"", "web.toml:7: 'mac' must be six hex octets")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nmac = \"03:52:4d:00:00:01\"", "web.toml:7: 'mac' 03:52:4d:00:00:01 is a multicast address")]
    [InlineData("tap = \"t0\"\naddress = \"10.0.0.2/24\"\nport = \"80\"", "web.toml:7: unknown key 'port' in [network] (known keys: tap, address, gateway, host_address, bridge, netns, mac)")]
    [InlineData("tap = \"t0\"\ntap = \"t1\"\naddress = \"10.0.0.2/24\"", "web.toml:6: duplicate key 'tap' in [network]")]
    [InlineData("tap = 5\naddress = \"10.0.0.2/24\"", "web.toml:5: 'tap' must be a string, not an integer")]
    public void Each_mistake_is_one_line_naming_where(string network, string expected)
    {
        var message = Error(network);
        Assert.StartsWith(expected, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void Network_must_be_one_table()
    {
        Assert.Contains("table [network] is defined twice",
            Error("tap = \"t0\"\naddress = \"10.0.0.2/24\"\n[network]\ntap = \"t1\""));
        Assert.Contains("'network' must be a table",
            Assert.Throws<ConfigException>(() => ConfigLoader.Parse("name = \"a\"\nprogram = \"/p\"\nnetwork = \"t0\"\n", "web.toml", "/srv")).Message);
    }

    [Fact]
    public void The_run_option_takes_the_same_keys()
    {
        var config = NetworkConfig.ParseOption("tap=rmrun0,address=10.98.0.2/24,gateway=10.98.0.1,host=10.98.0.1/24,netns=lab,mac=02:00:00:00:00:07", "prog", out var problem);
        Assert.Null(problem);
        var spec = config!.ToSpec();
        Assert.Equal("rmrun0", spec.Tap);
        Assert.Equal("10.98.0.1", spec.HostAddress.ToString());
        Assert.Equal("lab", spec.Netns);
        Assert.Equal(new MacAddress(0x020000000007), spec.Mac);
        Assert.Equal(MacAddress.FromName("prog").ToString(), NetworkConfig.ParseOption("tap=t,address=10.0.0.2/8", "prog", out _)!.Mac);

        Assert.Null(NetworkConfig.ParseOption("tap=t", "prog", out problem));
        Assert.Equal("--net needs address=... (tap=NAME,address=A.B.C.D/N at least)", problem);
        Assert.Null(NetworkConfig.ParseOption("tap=t,address=10.0.0.2/24,speed=10", "prog", out problem));
        Assert.StartsWith("--net: unknown key 'speed'", problem);
        Assert.Null(NetworkConfig.ParseOption("tap=t,address=10.0.0.2/24,gateway=10.1.0.1", "prog", out problem));
        Assert.StartsWith("--net: 'gateway' 10.1.0.1 is outside the domain's subnet", problem);
        Assert.Null(NetworkConfig.ParseOption("tap=t,address", "prog", out problem));
        Assert.StartsWith("--net wants KEY=VALUE", problem);
    }
}
