using Remus.Checkpoint.Witness;
using Remus.Cli.Commands;
using Remus.Toolstack;
using Remus.Tests.Support;
using Remus.Toolstack.Config;
using Remus.Toolstack.Witness;
using Xunit;

namespace Remus.Tests.Toolstack.Witness;

/// <summary>The witness on the command line and in the config (issue 12): list --cluster, the `witness` config key, URL checks.</summary>
public sealed class WitnessCliTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);

    [SkippableFact]
    public void ListCluster_ShowsEveryDomainTheWitnessKnows_AsATableAndAsJson()
    {
        Skip.If(EtcdCluster.SkipReason is not null, EtcdCluster.SkipReason);
        using var etcd = new EtcdCluster();
        using var witness = new EtcdWitness(etcd.ClientUrls);
        using var web = witness.Acquire("web", new WitnessHolder("host-a", 4242, "primary"), Ttl, CancellationToken.None);
        using var db = witness.Acquire("db", new WitnessHolder("host-b", 4343, "backup"), Ttl, CancellationToken.None);
        // An unreachable first URL: the listing fails over to the member that answers.
        string urls = $"http://127.0.0.1:{EtcdCluster.FreePort()},{etcd.ClientUrls[0]}";

        var table = RemusCli.Run(["list", "--cluster", "--witness", urls]);
        Assert.True(table.ExitCode == 0, table.StderrText);
        var lines = table.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^Name\s+Active host\s+PID\s+Role\s+Epoch\s+Lease\(s\)", lines[0]);
        Assert.Matches(@"^db\s+host-b\s+4343\s+backup\s+0\s+[0-2]/2\s*$", lines[1]);
        Assert.Matches(@"^web\s+host-a\s+4242\s+primary\s+0\s+[0-2]/2\s*$", lines[2]);

        var json = RemusCli.Run(["list", "--cluster", "--witness", urls, "--json"]);
        Assert.True(json.ExitCode == 0, json.StderrText);
        var rows = WitnessDomain.ListFromJson(json.StdoutText);
        Assert.Equal(["db", "web"], rows.Select(r => r.Name));
        Assert.Equal(("host-a", 4242, "primary", 0UL, 2L), (rows[1].Host, rows[1].Pid, rows[1].Role, rows[1].Epoch, rows[1].LeaseTtlSeconds));
        Assert.Contains("\"lease_left_s\"", json.StdoutText);
    }

    [Fact]
    public void ListCluster_WithoutAWitness_OrWithNoneReachable_SaysSo()
    {
        var none = RemusCli.Run(["list", "--cluster"]);
        Assert.NotEqual(0, none.ExitCode);
        Assert.Contains("list --cluster needs --witness", none.StderrText);

        string url = $"http://127.0.0.1:{EtcdCluster.FreePort()}";
        var down = RemusCli.Run(["list", "--cluster", "--witness", url]);
        Assert.NotEqual(0, down.ExitCode);
        Assert.Contains("witness unreachable", down.StderrText);
        Assert.Contains(url, down.StderrText);

        var bad = RemusCli.Run(["list", "--cluster", "--witness", "etcd-1:2379"]);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("is not an etcd client URL", bad.StderrText);
    }

    [Fact]
    public void ConfigKey_Witness_IsAListOfEtcdUrls()
    {
        var config = ConfigLoader.Parse("""
            name = "web"
            program = "/bin/web"
            witness = ["http://10.0.0.5:2379", "http://10.0.0.6:2379"]
            """, "web.toml", "/srv");
        Assert.Equal(["http://10.0.0.5:2379", "http://10.0.0.6:2379"], config.Witness);
        Assert.Null(ConfigLoader.Parse("name = \"web\"\nprogram = \"/bin/web\"\n", "web.toml", "/srv").Witness);

        Assert.Contains("is not an etcd client URL",
            Assert.Throws<ConfigException>(() => ConfigLoader.Parse("name = \"web\"\nprogram = \"/bin/web\"\nwitness = [\"10.0.0.5\"]\n", "web.toml", "/srv")).Message);
        Assert.Contains("at least one etcd URL",
            Assert.Throws<ConfigException>(() => ConfigLoader.Parse("name = \"web\"\nprogram = \"/bin/web\"\nwitness = []\n", "web.toml", "/srv")).Message);
    }

    [Fact]
    public void List_shows_a_fenced_domain_as_fenced()
    {
        string fenced = ListCommand.Protection(new RemusDomainInfo
        {
            Protected = false, Backup = "tcp:10.0.0.6:9000", Fenced = true,
            Lost = "another copy holds the witness key of domain 'web'",
        });
        Assert.StartsWith("FENCED: another copy took over (another copy holds the witness key of domain 'web')", fenced);
        Assert.StartsWith("UNPROTECTED", ListCommand.Protection(new RemusDomainInfo { Protected = false, Backup = "b", Lost = "gone" }));
    }
}
