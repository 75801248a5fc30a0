namespace Remus.Sandbox.Net;

/// <summary>
/// A domain's network interface (the config's [network] table): the tap device the VMM creates, where it creates it
/// and what the host side gets, and the domain's own MAC and IPv4 address. The MAC, address and connections move with
/// the domain; a VMM that takes it over (restore, migration, failover) creates the tap again in the same place.
/// </summary>
public sealed record NetworkSpec
{
    /// <summary>Name of the tap device the VMM creates (IFF_TAP | IFF_NO_PI), at most 15 characters.</summary>
    public required string Tap { get; init; }

    public required IPv4Address Address { get; init; }
    public required int PrefixLength { get; init; }

    /// <summary>Default route; null: only the local subnet (and loopback) is reachable.</summary>
    public IPv4Address? Gateway { get; init; }

    /// <summary>Address (and prefix) given to the host side of the tap; null when a bridge is used or none is wanted.</summary>
    public IPv4Address? HostAddress { get; init; }
    public int HostPrefixLength { get; init; }

    /// <summary>An existing bridge the tap is attached to; null: none.</summary>
    public string? Bridge { get; init; }

    /// <summary>An existing network namespace (/run/netns/NAME) to create the tap in; null: the VMM's own.</summary>
    public string? Netns { get; init; }

    public required MacAddress Mac { get; init; }
}
