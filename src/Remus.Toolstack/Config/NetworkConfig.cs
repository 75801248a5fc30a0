using Remus.Sandbox.Net;
using Remus.Sandbox.Platform.Net;

namespace Remus.Toolstack.Config;

/// <summary>
/// A domain's [network] table as the user wrote it (and as checkpoint streams carry it, so that the VMM that takes
/// the domain over creates the same interface): text values, checked by <see cref="Problem"/>. The MAC is always
/// set (the default, derived from the domain's name, is filled in when the config is read), so it moves with the
/// domain whatever its name is on the way.
/// <code>
/// [network]
/// tap = "rmweb0"                 # the tap device the VMM creates (1-15 characters)
/// address = "10.99.0.2/24"       # the domain's IPv4 address and prefix
/// gateway = "10.99.0.1"          # optional default route (inside the subnet)
/// host_address = "10.99.0.1/24"  # optional: given to the host side of the tap (not with bridge)
/// bridge = "br0"                 # optional: attach the tap to this existing bridge instead
/// netns = "rmlab"                # optional: an existing network namespace to create the tap in
/// mac = "02:52:4d:00:00:02"      # optional; default derived from the domain name
/// </code>
/// </summary>
public sealed record NetworkConfig
{
    public static readonly string[] Keys = ["tap", "address", "gateway", "host_address", "bridge", "netns", "mac"];

    public required string Tap { get; init; }
    public required string Address { get; init; }
    public string? Gateway { get; init; }
    public string? HostAddress { get; init; }
    public string? Bridge { get; init; }
    public string? Netns { get; init; }
    public required string Mac { get; init; }

    /// <summary>The default MAC of a domain named <paramref name="domainName"/>.</summary>
    public static string DefaultMac(string domainName) => MacAddress.FromName(domainName).ToString();

    /// <summary>The first problem with these values, as the end of a sentence naming the key; null: none.</summary>
    public string? Problem()
    {
        foreach (var (key, problem) in Problems()) return problem;
        return null;
    }

    /// <summary>Every key's problem, in the order of <see cref="Keys"/> and then the combinations.</summary>
    public IEnumerable<(string Key, string Problem)> Problems()
    {
        if (TapProblem(Tap) is { } tap) yield return ("tap", tap);
        if (AddressProblem("address", Address, out var address, out int prefix) is { } a)
        {
            yield return ("address", a);
            yield break; // the rest is judged against the address
        }
        if (Gateway is not null)
        {
            if (!IPv4Address.TryParse(Gateway, out var gateway))
                yield return ("gateway", $"'gateway' must be an IPv4 address like 10.99.0.1, not \"{Gateway}\"");
            else if (!gateway.SameNetwork(address, prefix))
                yield return ("gateway", $"'gateway' {gateway} is outside the domain's subnet {Network(address, prefix)}/{prefix}");
            else if (gateway == address)
                yield return ("gateway", $"'gateway' {gateway} is the domain's own address");
        }
        if (HostAddress is not null)
        {
            if (AddressProblem("host_address", HostAddress, out var host, out _) is { } h)
                yield return ("host_address", h);
            else if (host == address)
                yield return ("host_address", $"'host_address' {host} is the domain's own address");
            else if (!host.SameNetwork(address, prefix))
                yield return ("host_address", $"'host_address' {host} is outside the domain's subnet {Network(address, prefix)}/{prefix}");
        }
        if (Bridge is not null && !TapDevice.IsValidName(Bridge))
            yield return ("bridge", $"'bridge' must be an interface name of 1 to {TapDevice.MaxNameLength} characters without '/', ':' or spaces, not \"{Bridge}\"");
        if (Bridge is not null && HostAddress is not null)
            yield return ("bridge", "'host_address' and 'bridge' cannot both be set: with a bridge, the host's address belongs on the bridge");
        if (Netns is not null && !NetNamespace.IsValidName(Netns))
            yield return ("netns", $"'netns' must be a network namespace name (as 'ip netns add' takes), not \"{Netns}\"");
        if (!MacAddress.TryParse(Mac, out var mac))
            yield return ("mac", $"'mac' must be six hex octets like 02:52:4d:00:00:02, not \"{Mac}\"");
        else if (mac.IsMulticast)
            yield return ("mac", $"'mac' {Mac} is a multicast address (the first octet must be even)");
        else if (mac.Value == 0)
            yield return ("mac", "'mac' cannot be 00:00:00:00:00:00");
    }

    public static string? TapProblem(string tap) => TapDevice.IsValidName(tap)
        ? null
        : $"'tap' must be a device name of 1 to {TapDevice.MaxNameLength} characters without '/', ':' or spaces, not \"{tap}\"";

    private static string? AddressProblem(string key, string text, out IPv4Address address, out int prefix)
    {
        address = IPv4Address.Any;
        prefix = 0;
        int slash = text.IndexOf('/');
        if (slash < 0 || !IPv4Address.TryParse(text[..slash], out address))
            return $"'{key}' must be an IPv4 address with its prefix length, like 10.99.0.2/24, not \"{text}\"";
        var p = text[(slash + 1)..];
        if (p.Length is 0 or > 2 || !p.All(char.IsAsciiDigit) || (prefix = int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)) is < 1 or > 32)
            return $"'{key}' has a bad prefix length \"/{p}\" (1 to 32)";
        if (address.IsAny || address.IsLoopback || address.IsMulticast || address.IsBroadcast || (address.Value >> 28) == 0xF)
            return $"'{key}' {address} cannot be an interface's address";
        if (prefix <= 30)
        {
            uint hostMask = uint.MaxValue >> prefix;
            if ((address.Value & hostMask) == 0) return $"'{key}' {address}/{prefix} is the subnet's own address, not a host's";
            if ((address.Value & hostMask) == hostMask) return $"'{key}' {address}/{prefix} is the subnet's broadcast address";
        }
        return null;
    }

    private static IPv4Address Network(IPv4Address address, int prefix) =>
        new(prefix == 0 ? 0 : address.Value & (uint.MaxValue << (32 - prefix)));

    /// <summary>The sandbox's form; the values must be valid (<see cref="Problem"/> null).</summary>
    public NetworkSpec ToSpec()
    {
        if (Problem() is { } problem) throw new ConfigException($"[network]: {problem}");
        ParseWithPrefix(Address, out var address, out int prefix);
        IPv4Address? host = null;
        int hostPrefix = 0;
        if (HostAddress is not null)
        {
            ParseWithPrefix(HostAddress, out var h, out hostPrefix);
            host = h;
        }
        MacAddress.TryParse(Mac, out var mac);
        return new NetworkSpec
        {
            Tap = Tap,
            Address = address,
            PrefixLength = prefix,
            Gateway = Gateway is null ? null : Parsed(Gateway),
            HostAddress = host,
            HostPrefixLength = hostPrefix,
            Bridge = Bridge,
            Netns = Netns,
            Mac = mac,
        };
    }

    private static IPv4Address Parsed(string text)
    {
        IPv4Address.TryParse(text, out var a);
        return a;
    }

    private static void ParseWithPrefix(string text, out IPv4Address address, out int prefix)
    {
        int slash = text.IndexOf('/');
        IPv4Address.TryParse(text[..slash], out address);
        prefix = int.Parse(text[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The value of `remus run --net`: comma-separated KEY=VALUE with the config's keys (host for host_address):
    /// tap=NAME,address=A/N[,gateway=G][,host=H/N][,bridge=B][,netns=NS][,mac=M]. Null and a problem when it is wrong.
    /// </summary>
    public static NetworkConfig? ParseOption(string text, string defaultMacSeed, out string? problem)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0)
            {
                problem = $"--net wants KEY=VALUE items separated by commas, not '{part}'";
                return null;
            }
            var key = part[..eq].Trim();
            if (key == "host") key = "host_address";
            if (!Keys.Contains(key))
            {
                problem = $"--net: unknown key '{part[..eq]}' (known: tap, address, gateway, host, bridge, netns, mac)";
                return null;
            }
            if (!values.TryAdd(key, part[(eq + 1)..].Trim()))
            {
                problem = $"--net: '{part[..eq]}' is given twice";
                return null;
            }
        }
        foreach (var required in new[] { "tap", "address" })
            if (!values.ContainsKey(required))
            {
                problem = $"--net needs {required}=... (tap=NAME,address=A.B.C.D/N at least)";
                return null;
            }
        var config = new NetworkConfig
        {
            Tap = values["tap"],
            Address = values["address"],
            Gateway = values.GetValueOrDefault("gateway"),
            HostAddress = values.GetValueOrDefault("host_address"),
            Bridge = values.GetValueOrDefault("bridge"),
            Netns = values.GetValueOrDefault("netns"),
            Mac = values.GetValueOrDefault("mac") ?? DefaultMac(defaultMacSeed),
        };
        problem = config.Problem() is { } p ? $"--net: {p}" : null;
        return problem is null ? config : null;
    }
}
