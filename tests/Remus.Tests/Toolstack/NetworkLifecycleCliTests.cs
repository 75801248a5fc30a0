using Remus.Sandbox.Platform.Net;
using Remus.Tests.EndToEnd;
using Remus.Tests.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// A domain's network through the real CLI and VMMs, in a namespace the test creates: `remus create` makes and
/// configures the tap (the domain answers ICMP echo), a second domain wanting the same tap fails in one line, output
/// commit holds the frames while protected and `list --json` counts them, a SIGKILL of the primary VMM hands the
/// domain to the backup which creates the tap again (the domain answers again, same address and MAC), a same-host
/// migration and a save/restore do the same, and `destroy` leaves no tap behind.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NetworkLifecycleCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();
    private TestNetns? _ns;

    public void Dispose()
    {
        _bed.Dispose();
        _ns?.Dispose();
    }

    /// <summary>ICMP echo from inside the namespace until one is answered (each waits 2 s), up to <paramref name="patience"/>.</summary>
    private static bool Answers(TestNetns ns, string address, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Scaled(patience);
        do
        {
            var ok = Remus.Sandbox.Platform.Net.NetNamespace.Run(ns.Name, () =>
            {
                using var ping = new System.Net.NetworkInformation.Ping();
                try
                {
                    return ping.Send(System.Net.IPAddress.Parse(address), 2000).Status == System.Net.NetworkInformation.IPStatus.Success;
                }
                catch (System.Net.NetworkInformation.PingException)
                {
                    return false; // no route yet: the tap (and its host address) is not there yet
                }
            });
            if (ok) return true;
            Thread.Sleep(100);
        } while (DateTime.UtcNow < deadline);
        return false;
    }

    private string Details() => E2E.Logs(_bed);

    [SkippableFact]
    public void The_tap_is_made_held_behind_output_commit_recreated_by_the_backup_migration_and_restore_and_removed()
    {
        _ns = TestNetns.Create();
        int n = Random.Shared.Next(1, 250);
        string address = $"10.96.{n}.2", tap = $"rmcli{n}";
        string Config(string name) => _bed.Config($"{name}.toml", $"""
            name = "{name}"
            memory = 32
            program = "{Ticker.Program}"
            args = ["100000", "20"]
            [network]
            tap = "{tap}"
            address = "{address}/24"
            host_address = "10.96.{n}.1/24"
            netns = "{_ns.Name}"
            """);
        int vmm = E2E.VmmPid(_bed.Ok("create", Config("netweb")));
        Assert.True(Answers(_ns, address, TimeSpan.FromSeconds(20)), $"the domain answers through its tap\n{Details()}");
        string domainMac = Remus.Sandbox.Net.MacAddress.FromName("netweb").ToString();
        Assert.Contains(domainMac, _ns.Ip("neigh", "show", address));

        // A second domain on the same tap: one line, nothing registered, the first untouched.
        var line = _bed.Fails("create", Config("netweb2"));
        Assert.Equal($"remus: tap device {tap} is in use", line);
        Assert.Equal(["netweb"], _bed.List().Select(d => d.Name));

        // Protected: frames go out only through output commit, and list --json counts them.
        string receiver = $"{RemusCli.DotnetPath} {RemusCli.DllPath} migrate-receive -r --timeout 1000";
        var protect = _bed.Remus(["protect", "-i", "20", "-s", "", "netweb", receiver], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"{protect}\n{Details()}");
        Assert.True(Answers(_ns, address, TimeSpan.FromSeconds(20)), $"the protected domain answers\n{Details()}");
        var net = _bed.Domain("netweb").Remus?.Net;
        Assert.True(net is { FramesReleased: > 0, BytesReleased: > 0 }, $"list --json counts released frames: {net}\n{Details()}");
        Assert.True(net.LatencyP50Ms > 0, $"held frames waited for their ack: {net}");

        // The primary's host dies: the backup takes over and makes the tap again.
        System.Diagnostics.Process.GetProcessById(vmm).Kill();
        DomainTestBed.WaitUntil(() => _bed.List().Any(d => d.Name == "netweb" && d.Pid != vmm), "the backup takes over", TimeSpan.FromSeconds(60));
        Assert.True(Answers(_ns, address, TimeSpan.FromSeconds(30)), $"the domain answers after the failover\n{Details()}");
        Assert.Contains(domainMac, _ns.Ip("neigh", "show", address)); // the same MAC: it moved with the domain

        // Migration within the host: the target waits for the source to let go of the tap.
        var migrate = _bed.Remus(["migrate", "-s", "", "netweb", $"{RemusCli.DotnetPath} {RemusCli.DllPath} migrate-receive"], stdin: null,
            timeout: TimeSpan.FromSeconds(60));
        Assert.True(migrate.ExitCode == 0, $"{migrate}\n{Details()}");
        Assert.True(Answers(_ns, address, TimeSpan.FromSeconds(30)), $"the domain answers after the migration\n{Details()}");

        // Save (the domain stops, its tap goes), restore (the tap again).
        var save = Path.Combine(_bed.Work, "netweb.save");
        _bed.Ok("save", "netweb", save);
        DomainTestBed.WaitUntil(() => !_ns.IpOk("link", "show", tap), "the saved domain's tap goes");
        _bed.Ok("restore", save);
        Assert.True(Answers(_ns, address, TimeSpan.FromSeconds(30)), $"the domain answers after the restore\n{Details()}");

        _bed.Ok("destroy", "netweb");
        Assert.False(_ns.IpOk("link", "show", tap), "destroy leaves no tap behind");
    }
}
