using System.Buffers;
using Remus.Sandbox.Net.Arp;

namespace Remus.Sandbox.Net.Ipv4;

/// <summary>
/// IPv4 (RFC 791/1122) for the domain: receives from the Ethernet interface and the loopback, checks headers
/// (version, lengths, checksum; options are skipped), reassembles fragments, and delivers to ICMP or the transports;
/// sends for them with routing (127/8 and our own address to the loopback, the local subnet directly, the rest to the
/// gateway; ENETUNREACH without one), ARP resolution of the next hop and fragmentation unless DF (EMSGSIZE then).
/// We are a host, not a router: nothing is forwarded, and datagrams not addressed to us are dropped. Without a
/// [network] spec there is only the loopback.
/// </summary>
internal sealed class Ipv4Layer : IIpLayer
{
    private readonly Func<long> _now;
    private readonly NetworkSpec? _spec;
    private readonly NetStats _stats;
    private readonly Action _deadlineChanged;
    private readonly ITransportProtocol?[] _transports = new ITransportProtocol?[256];
    private readonly List<ITransportProtocol> _registered = [];
    private readonly uint _mask;

    // The header (and 8 bytes after it) of the datagram being delivered, for the ICMP error a transport may owe it.
    private readonly byte[] _current = new byte[60 + 8];
    private int _currentLength;
    private bool _currentLinkBroadcast;

    public Ipv4Layer(Func<long> now, NetworkSpec? spec, NetStats stats, Action deadlineChanged)
    {
        _now = now;
        _spec = spec;
        _stats = stats;
        _deadlineChanged = deadlineChanged;
        Icmp = new Icmp(this, stats);
        Loopback = new Loopback(stats, p => Receive(p, fromLoopback: true, linkBroadcast: false), deadlineChanged);
        Reassembly = new Reassembly(stats, p => Icmp.SendError(Icmp.TimeExceeded, Icmp.CodeReassemblyTimeExceeded, p, false), deadlineChanged);
        if (spec is not null)
        {
            _mask = spec.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - spec.PrefixLength);
            Ethernet = new Ethernet(spec.Mac, stats);
            Arp = new ArpTable(Ethernet, spec.Address, now, stats, Unresolved, deadlineChanged);
        }
    }

    public Ethernet? Ethernet { get; }
    public PathMtu PathMtu { get; } = new();
    public ArpTable? Arp { get; }
    public Reassembly Reassembly { get; }
    public Loopback Loopback { get; }
    public Icmp Icmp { get; }

    /// <summary>The IPv4 id of the next datagram sent (part of the checkpoint).</summary>
    public ushort NextId { get; set; }

    /// <summary>The last socket id handed out (part of the checkpoint).</summary>
    public int LastSocketId { get; set; }

    public long NowNs => _now();

    public void Register(ITransportProtocol transport)
    {
        _transports[transport.Protocol] = transport;
        _registered.Add(transport);
    }

    public ITransportProtocol? Transport(byte protocol) => _transports[protocol];

    public int NewSocketId() => ++LastSocketId;

    public void DeadlineChanged() => _deadlineChanged();

    public bool IsLocal(IPv4Address address) => address.IsLoopback || (_spec is not null && address == _spec.Address);

    /// <summary>The limited broadcast or our subnet's directed broadcast.</summary>
    public bool IsBroadcast(IPv4Address address) =>
        address.IsBroadcast || (_spec is not null && _spec.PrefixLength < 31 && address.Value == (_spec.Address.Value | ~_mask));

    /// <summary>What a program's 0.0.0.0 destination means (Linux: the source, else 127.0.0.1): the local host.</summary>
    public static IPv4Address LocalIfAny(IPv4Address destination, IPv4Address source) =>
        !destination.IsAny ? destination : !source.IsAny ? source : IPv4Address.Loopback;

    private enum Route { None, Loopback, Link }

    private Route RouteTo(IPv4Address destination, out IPv4Address nextHop)
    {
        nextHop = destination;
        if (destination.IsLoopback || destination.IsAny) return Route.Loopback;
        if (_spec is null) return Route.None;
        if (destination == _spec.Address) return Route.Loopback;
        if (destination.IsBroadcast || destination.IsMulticast || destination.SameNetwork(_spec.Address, _spec.PrefixLength)) return Route.Link;
        if (_spec.Gateway is { } gw)
        {
            nextHop = gw;
            return Route.Link;
        }
        return Route.None;
    }

    public IPv4Address? SourceFor(IPv4Address destination) => RouteTo(destination, out _) switch
    {
        Route.Loopback when destination.IsLoopback || destination.IsAny => IPv4Address.Loopback,
        Route.None => null,
        _ => _spec!.Address,
    };

    public int MtuFor(IPv4Address destination) =>
        RouteTo(destination, out _) == Route.Link ? PathMtu.For(destination, NetLimits.Mtu, _now()) : NetLimits.LoopbackMtu;

    // ---- receive ----

    /// <summary>An inbound Ethernet frame.</summary>
    public void ReceiveFrame(ReadOnlySpan<byte> frame)
    {
        if (Ethernet is not { } eth)
        {
            _stats.FrameIn(frame.Length);
            _stats.Drop(NetDrop.NoLink);
            return;
        }
        if (!eth.Accept(frame, out ushort type, out var payload, out bool linkBroadcast)) return;
        switch (type)
        {
            case Ethernet.TypeArp:
                Arp!.Receive(payload);
                break;
            case Ethernet.TypeIpv4:
                Receive(payload, fromLoopback: false, linkBroadcast);
                break;
            default:
                _stats.Drop(NetDrop.UnknownEtherType);
                break;
        }
    }

    private void Receive(ReadOnlySpan<byte> packet, bool fromLoopback, bool linkBroadcast)
    {
        if (!Ipv4Header.TryParse(packet, out var h, out bool badChecksum))
        {
            _stats.Drop(badChecksum ? NetDrop.BadChecksum : NetDrop.Malformed);
            return;
        }
        packet = packet[..h.TotalLength]; // an Ethernet frame may carry padding
        bool broadcast = IsBroadcast(h.Destination);
        if (!fromLoopback)
        {
            // A host: only our address or a broadcast; never a loopback, broadcast, multicast or our own source off the wire.
            if ((h.Destination != _spec!.Address && !broadcast) || h.Source.IsLoopback || h.Source.IsMulticast || IsBroadcast(h.Source)
                || h.Source == _spec.Address)
            {
                _stats.Drop(NetDrop.NotForUs);
                return;
            }
        }
        if (h.Ttl == 0)
        {
            _stats.Drop(NetDrop.TtlExpired);
            return;
        }
        if (h.IsFragment)
        {
            if (!Reassembly.Add(h, packet, _now(), out var whole)) return;
            try
            {
                Ipv4Header.TryParse(whole.Span, out var wh, out _);
                Deliver(wh, whole.Span, broadcast, linkBroadcast);
            }
            finally
            {
                whole.Return();
            }
            return;
        }
        Deliver(h, packet, broadcast, linkBroadcast);
    }

    private void Deliver(in Ipv4Header h, ReadOnlySpan<byte> packet, bool broadcast, bool linkBroadcast)
    {
        var payload = packet[h.HeaderLength..];
        _currentLength = h.HeaderLength + Math.Min(8, payload.Length);
        packet[.._currentLength].CopyTo(_current);
        _currentLinkBroadcast = linkBroadcast || broadcast;
        if (h.Protocol == Icmp.Protocol)
        {
            Icmp.Receive(h, payload, broadcast);
        }
        else if (_transports[h.Protocol] is { } t)
        {
            t.Receive(h.Source, h.Destination, payload, h.Tos);
        }
        else
        {
            _stats.Drop(NetDrop.UnknownProtocol);
            ReplyUnreachable(Icmp.CodeProtocolUnreachable);
        }
    }

    /// <summary>
    /// For a transport, during its Receive: sends ICMP destination unreachable (port unreachable for UDP) about the
    /// datagram being delivered (not if it came to a broadcast address).
    /// </summary>
    public void ReplyUnreachable(byte code) =>
        Icmp.SendError(Icmp.DestinationUnreachable, code, _current.AsSpan(0, _currentLength), _currentLinkBroadcast);

    /// <summary>A datagram we held for a neighbour that never answered: its transport hears host unreachable (Linux's arp_error_report).</summary>
    private void Unresolved(ReadOnlySpan<byte> packet)
    {
        if (!Ipv4Header.TryParse(packet, out var h, out _) || h.FragmentOffset != 0) return;
        var payload = packet[h.HeaderLength..h.TotalLength];
        if (payload.Length >= 8 && _transports[h.Protocol] is { } t)
            t.IcmpError(Icmp.DestinationUnreachable, Icmp.CodeHostUnreachable, h.Source, h.Destination, payload, 0);
    }

    // ---- send ----

    public long Send(IPv4Address source, IPv4Address destination, byte protocol, ReadOnlySpan<byte> payload, byte tos = 0, byte ttl = 64, bool dontFragment = true)
    {
        var route = RouteTo(destination, out var nextHop);
        if (route == Route.None)
        {
            _stats.Drop(NetDrop.NoRoute);
            return -NetErrno.ENETUNREACH;
        }
        if (source.IsAny) source = SourceFor(destination)!.Value;
        else if (route == Route.Link && source.IsLoopback) return -NetErrno.EINVAL; // 127/8 never leaves the host
        if (destination.IsAny) destination = LocalIfAny(destination, source);
        int total = Ipv4Header.MinLength + payload.Length;
        if (total > 65535) return -NetErrno.EMSGSIZE;
        ushort id = NextId++;
        ushort df = dontFragment ? Ipv4Header.FlagDontFragment : (ushort)0;
        if (route == Route.Loopback)
        {
            var a = ArrayPool<byte>.Shared.Rent(total);
            Ipv4Header.Write(a, total, tos, id, df, ttl, protocol, source, destination);
            payload.CopyTo(a.AsSpan(Ipv4Header.MinLength));
            Loopback.Send(new PacketBuffer(a, total));
            return 0;
        }
        var eth = Ethernet!;
        if (IsBroadcast(destination))
        {
            // A broadcast reaches this host's own sockets too (Linux loops a copy back).
            var a = ArrayPool<byte>.Shared.Rent(total);
            Ipv4Header.Write(a, total, tos, id, df, ttl, protocol, source, destination);
            payload.CopyTo(a.AsSpan(Ipv4Header.MinLength));
            Loopback.Send(new PacketBuffer(a, total));
        }
        int mtu = PathMtu.For(destination, NetLimits.Mtu, _now());
        if (total <= mtu)
        {
            Ipv4Header.Write(eth.Payload, total, tos, id, df, ttl, protocol, source, destination);
            payload.CopyTo(eth.Payload[Ipv4Header.MinLength..]);
            Output(nextHop, total);
            return 0;
        }
        if (dontFragment) return -NetErrno.EMSGSIZE;
        int chunk = (mtu - Ipv4Header.MinLength) & ~7;
        for (int offset = 0; offset < payload.Length; offset += chunk)
        {
            int n = Math.Min(chunk, payload.Length - offset);
            bool more = offset + n < payload.Length;
            ushort flags = (ushort)((more ? Ipv4Header.FlagMoreFragments : 0) | (offset / 8));
            Ipv4Header.Write(eth.Payload, Ipv4Header.MinLength + n, tos, id, flags, ttl, protocol, source, destination);
            payload.Slice(offset, n).CopyTo(eth.Payload[Ipv4Header.MinLength..]);
            Output(nextHop, Ipv4Header.MinLength + n);
        }
        return 0;
    }

    /// <summary>Sends the packet in the Ethernet payload buffer to the next hop, or holds it while ARP asks.</summary>
    private void Output(IPv4Address nextHop, int length)
    {
        var eth = Ethernet!;
        MacAddress mac;
        if (IsBroadcast(nextHop)) mac = MacAddress.Broadcast;
        else if (nextHop.IsMulticast) mac = new MacAddress(0x01_00_5E_00_00_00UL | (nextHop.Value & 0x7FFFFF));
        else if (!Arp!.TryResolve(nextHop, out mac))
        {
            Arp.Enqueue(nextHop, eth.Payload[..length]);
            return;
        }
        eth.Transmit(mac, Ethernet.TypeIpv4, length);
    }

    // ---- timers ----

    public long NextDeadlineNs
    {
        get
        {
            long d = Math.Min(Reassembly.NextDeadlineNs, Loopback.NextDeadlineNs);
            if (Arp is not null) d = Math.Min(d, Arp.NextDeadlineNs);
            foreach (var t in _registered) d = Math.Min(d, t.NextDeadlineNs);
            return d;
        }
    }

    public void RunTimers(long now)
    {
        Arp?.RunTimers(now);
        Reassembly.RunTimers(now);
        foreach (var t in _registered)
            if (t.NextDeadlineNs <= now) t.RunTimers(now);
    }
}
