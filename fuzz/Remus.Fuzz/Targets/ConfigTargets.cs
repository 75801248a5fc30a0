using System.Text;
using Remus.Sandbox;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Security;
using Remus.Toolstack.Vmm;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The config loaders: a domain config file (TOML, <see cref="ConfigLoader.Parse"/>), the host config
/// (<see cref="HostConfig.Parse"/>), and the domain config a checkpoint stream carries (JSON,
/// <see cref="IncomingVmm.ParseConfig"/>) judged by a receiver's policy as <c>migrate-receive</c> does. Each
/// accepted config is also turned into what the VMM builds from it (<see cref="DomainConfig.ToSpec"/>).
/// </summary>
public static class ConfigTargets
{
    private const string Folder = "/nonexistent-remus-fuzz";

    private static readonly Type[] Refusals = [typeof(RemusException), typeof(SandboxException)];

    public static FuzzTarget DomainToml { get; } = new("domain-toml",
        "ConfigLoader.Parse (domain config TOML) + ToSpec", input =>
        {
            var config = ConfigLoader.Parse(Text(input), "fuzz.toml", Folder);
            _ = config.ToSpec();
        }, Refusals);

    public static FuzzTarget HostToml { get; } = new("host-toml",
        "HostConfig.Parse (host config TOML) + ReceivePolicy.For", input =>
        {
            var host = HostConfig.Parse(Text(input), "host.toml", Folder);
            _ = ReceivePolicy.For(host, tcp: true);
            _ = ReceivePolicy.For(host, tcp: false);
        }, Refusals);

    public static FuzzTarget DomainJson { get; } = new("config-json",
        "IncomingVmm.ParseConfig (a stream's domain config JSON) + ReceivePolicy.Check + ToSpec", input =>
        {
            var config = IncomingVmm.ParseConfig(input).WithVolumesUnder(Folder + "/volumes");
            new ReceivePolicy { AllowedPaths = [Folder] }.Check(config, Folder + "/volumes");
            ReceivePolicy.Unrestricted.Check(config);
            _ = config.ToSpec();
        }, Refusals);

    /// <summary>Config files are read as UTF-8 text (File.ReadAllText): invalid bytes become U+FFFD.</summary>
    private static string Text(byte[] input) => Encoding.UTF8.GetString(input);
}
