using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net;

/// <summary>A transport the IPv4 layer delivers to (TCP, UDP): its receive path, ICMP errors, timers, sockets and snapshot.</summary>
internal interface ITransportProtocol
{
    /// <summary>The IPv4 protocol number (6 TCP, 17 UDP).</summary>
    byte Protocol { get; }

    /// <summary>One reassembled datagram's payload addressed to this domain (the transport verifies its own checksum).</summary>
    void Receive(IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> segment, byte tos);

    /// <summary>
    /// An ICMP error about a datagram this transport sent: <paramref name="original"/> is the start of that datagram's
    /// transport header (at least 8 bytes); <paramref name="nextHopMtu"/> is set for "fragmentation needed".
    /// </summary>
    void IcmpError(int type, int code, IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> original, int nextHopMtu);

    /// <summary>The earliest timer deadline (guest monotonic ns); long.MaxValue when none.</summary>
    long NextDeadlineNs { get; }

    void RunTimers(long nowNs);

    /// <summary>A new socket of this transport with the given id (ids are unique across the stack).</summary>
    long CreateSocket(int id, out IInetSocket? socket);

    IInetSocket? SocketById(int id);

    void Save(BinaryWriter w);

    void Load(BinaryReader r);
}
