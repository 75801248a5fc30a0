using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>A network namespace made for one test (remus-t-XXXXXXXX), deleted with everything in it on dispose.</summary>
internal sealed class TestNetns : IDisposable
{
    private TestNetns(string name) => Name = name;

    public string Name { get; }

    public static bool Available(out string reason)
    {
        reason = "";
        if (HostOs.geteuid() != 0) reason = "needs root (network namespaces and tap devices)";
        else if (ProcessRunner.FindOnPath("ip") is null) reason = "needs iproute2's ip";
        else if (!File.Exists("/dev/net/tun")) reason = "needs /dev/net/tun";
        return reason.Length == 0;
    }

    public static TestNetns Create()
    {
        Skip.If(!Available(out var why), why);
        var name = $"remus-t-{Guid.NewGuid().ToString("N")[..8]}";
        var r = Run("netns", "add", name);
        Assert.True(r.ExitCode == 0, r.ToString());
        return new TestNetns(name);
    }

    public string Ip(params string[] args)
    {
        var r = Run(["-n", Name, .. args]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.StdoutText;
    }

    public bool IpOk(params string[] args) => Run(["-n", Name, .. args]).ExitCode == 0;

    public static bool IpOk(string a, string b, string c) => Run(a, b, c).ExitCode == 0;

    /// <summary>Runs <paramref name="program"/> inside the namespace (ip netns exec).</summary>
    public RunResult Exec(TimeSpan timeout, params string[] program) => ProcessRunner.Run("ip", ["netns", "exec", Name, .. program], null, timeout);

    private static RunResult Run(params string[] args) => ProcessRunner.Run("ip", args, null, TimeSpan.FromSeconds(30));

    public void Dispose() => Run("netns", "delete", Name);
}
