namespace Remus.Sandbox.Net;

/// <summary>
/// What the IPv4 layer offers the transports (TCP, UDP): it adds the IPv4 header, routes (loopback inside the domain,
/// the local subnet, the gateway), resolves the next hop with ARP (queueing a bounded number of datagrams meanwhile)
/// and fragments unless <paramref name="dontFragment"/>. Transports compute their own checksums
/// (<see cref="Checksum.PseudoHeader"/>). Everything runs under the kernel lock.
/// </summary>
internal interface IIpLayer
{
    /// <summary>The guest's monotonic clock in ns: every deadline in the stack is on it (checkpoints carry it).</summary>
    long NowNs { get; }

    /// <summary>Sends one transport datagram; 0, or a negated errno (ENETUNREACH with no route, EMSGSIZE past the MTU with DF).</summary>
    long Send(IPv4Address source, IPv4Address destination, byte protocol, ReadOnlySpan<byte> payload, byte tos = 0, byte ttl = 64, bool dontFragment = true);

    /// <summary>The local address a socket bound to INADDR_ANY uses to reach <paramref name="destination"/>; null with no route.</summary>
    IPv4Address? SourceFor(IPv4Address destination);

    /// <summary>The path MTU towards <paramref name="destination"/> (1500 on the tap, 65536 on loopback).</summary>
    int MtuFor(IPv4Address destination);

    /// <summary>Whether <paramref name="address"/> is one of the domain's own (its interface address, or 127/8).</summary>
    bool IsLocal(IPv4Address address);

    /// <summary>A fresh socket id, unique across the stack's transports (for sockets a transport makes itself: accept).</summary>
    int NewSocketId();

    /// <summary>Tells the stack's timer that some transport's <c>NextDeadlineNs</c> moved earlier.</summary>
    void DeadlineChanged();
}
