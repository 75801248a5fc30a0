using System.Buffers.Binary;
using Remus.Sandbox.Net.Ipv4;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net.Udp;

/// <summary>
/// UDP (RFC 768) over the stack's IPv4: the port table (bind rules and ephemeral ports 32768-60999 as Linux), the
/// choice of the socket a datagram is for (Linux's compute_score: a bound address and a connected peer that match
/// outrank wildcards; SO_REUSEPORT groups spread by a hash of the 4-tuple; broadcasts go to every matching socket),
/// checksums both ways (0 on receive: none), ICMP port unreachable for a closed port and ICMP errors to the sender.
/// </summary>
internal sealed class UdpLayer : ITransportProtocol
{
    public const byte ProtocolNumber = 17;
    private const int HeaderLength = 8;

    private readonly Dictionary<int, UdpSocket> _sockets = [];
    private readonly Dictionary<ushort, List<UdpSocket>> _ports = [];
    private readonly NetStats _stats;
    private readonly SnapshotScratch _scratch = new();
    private readonly MemoryStream _section = new();
    private readonly BinaryWriter _sectionWriter;
    private byte[]? _datagram;
    private int _nextEphemeral = NetLimits.EphemeralLow;
    private long _bindSequence;

    public UdpLayer(Ipv4Layer ip, NetStats stats)
    {
        Ip = ip;
        _stats = stats;
        _sectionWriter = new BinaryWriter(_section);
    }

    public Ipv4Layer Ip { get; }
    public byte Protocol => ProtocolNumber;
    public int SocketCount => _sockets.Count;
    public long NextDeadlineNs => long.MaxValue;

    public void RunTimers(long nowNs) { }

    public long CreateSocket(int id, out IInetSocket? socket)
    {
        var s = new UdpSocket(this, id);
        _sockets[id] = s;
        SectionDirty = true;
        socket = s;
        return 0;
    }

    public IInetSocket? SocketById(int id) => _sockets.GetValueOrDefault(id);

    /// <summary>What all receive queues are charged (bounded by <see cref="NetLimits.UdpMemory"/>).</summary>
    public long MemoryCharged { get; private set; }

    internal bool Charge(int bytes, bool force = false)
    {
        if (!force && MemoryCharged + bytes > NetLimits.UdpMemory) return false;
        MemoryCharged += bytes;
        return true;
    }

    internal void Uncharge(int bytes) => MemoryCharged -= bytes;

    internal void Remove(UdpSocket s)
    {
        Unbind(s);
        _sockets.Remove(s.Id);
        SectionDirty = true;
    }

    // ---- the port table ----

    private static bool Overlap(IPv4Address a, IPv4Address b) => a.IsAny || b.IsAny || a == b;

    private bool Conflicts(UdpSocket s, IPv4Address address, ushort port)
    {
        if (!_ports.TryGetValue(port, out var bound)) return false;
        foreach (var o in bound)
        {
            if (o == s || !Overlap(o.LocalEndpoint.Address, address)) continue;
            if (o.ReuseAddress && s.ReuseAddress) continue;
            if (o.ReusePort && s.ReusePort) continue;
            return true;
        }
        return false;
    }

    /// <summary>Enters <paramref name="s"/> at <paramref name="local"/> (port 0: an ephemeral one); -EADDRINUSE, or -EAGAIN with none free.</summary>
    internal long Bind(UdpSocket s, NetEndpoint local)
    {
        ushort port = local.Port;
        if (port == 0)
        {
            int range = NetLimits.EphemeralHigh - NetLimits.EphemeralLow + 1;
            int i = 0;
            for (; i < range; i++)
            {
                int candidate = NetLimits.EphemeralLow + (_nextEphemeral - NetLimits.EphemeralLow + i) % range;
                if (!_ports.ContainsKey((ushort)candidate)) { port = (ushort)candidate; break; }
            }
            if (port == 0) return -NetErrno.EAGAIN;
            _nextEphemeral = port + 1 > NetLimits.EphemeralHigh ? NetLimits.EphemeralLow : port + 1;
        }
        else if (Conflicts(s, local.Address, port))
        {
            return -NetErrno.EADDRINUSE;
        }
        if (!_ports.TryGetValue(port, out var list)) _ports[port] = list = [];
        list.Add(s);
        s.BindSequence = ++_bindSequence;
        s.SetLocal(new NetEndpoint(local.Address, port));
        return 0;
    }

    /// <summary>Changes the bound address, keeping the port (connect fixing the source, disconnect releasing it).</summary>
    internal void Rebind(UdpSocket s, NetEndpoint local) => s.SetLocal(local);

    internal void Unbind(UdpSocket s)
    {
        ushort port = s.LocalEndpoint.Port;
        if (port != 0 && _ports.TryGetValue(port, out var list))
        {
            list.Remove(s);
            if (list.Count == 0) _ports.Remove(port);
        }
        s.SetLocal(default);
    }

    // ---- send ----

    internal long SendDatagram(UdpSocket s, NetEndpoint to, ReadOnlySpan<byte> data)
    {
        var source = s.LocalEndpoint.Address;
        if (source.IsAny || source.IsBroadcast || source.IsMulticast)
        {
            if (Ip.SourceFor(to.Address) is not { } chosen) return -NetErrno.ENETUNREACH;
            source = chosen;
        }
        int length = HeaderLength + data.Length;
        var d = (_datagram ??= new byte[65536]).AsSpan(0, length);
        BinaryPrimitives.WriteUInt16BigEndian(d, s.LocalEndpoint.Port);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], to.Port);
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], (ushort)length);
        d[6] = d[7] = 0;
        data.CopyTo(d[HeaderLength..]);
        ushort sum = Checksum.Finish(Checksum.Add(Checksum.PseudoHeader(source, to.Address, ProtocolNumber, length), d));
        BinaryPrimitives.WriteUInt16BigEndian(d[6..], sum == 0 ? (ushort)0xFFFF : sum);
        // IP_PMTUDISC_WANT (the default) sets DF when the datagram fits and fragments it when not; DO/PROBE never fragment.
        bool df = s.PmtuDiscover >= UdpSocket.PmtuDiscDo
            || (s.PmtuDiscover == UdpSocket.PmtuDiscWant && Ipv4Header.MinLength + length <= Ip.MtuFor(to.Address));
        return Ip.Send(source, to.Address, ProtocolNumber, d, s.Tos, (byte)(s.Ttl < 0 ? 64 : s.Ttl), df);
    }

    // ---- receive ----

    public void Receive(IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> segment, byte tos)
    {
        if (segment.Length < HeaderLength) { _stats.Drop(NetDrop.Malformed); return; }
        int length = BinaryPrimitives.ReadUInt16BigEndian(segment[4..]);
        if (length < HeaderLength || length > segment.Length) { _stats.Drop(NetDrop.Malformed); return; }
        segment = segment[..length];
        if (BinaryPrimitives.ReadUInt16BigEndian(segment[6..]) != 0
            && Checksum.Finish(Checksum.Add(Checksum.PseudoHeader(source, destination, ProtocolNumber, length), segment)) != 0)
        {
            _stats.Drop(NetDrop.BadChecksum);
            return;
        }
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
        var from = new NetEndpoint(source, sourcePort);
        var payload = segment[HeaderLength..];
        if (Ip.IsBroadcast(destination) || destination.IsMulticast)
        {
            // Every socket on the port that would take it (Linux's __udp4_lib_mcast_deliver).
            if (!_ports.TryGetValue(destinationPort, out var bound)) { _stats.Drop(NetDrop.NoSocket); return; }
            foreach (var s in bound.ToArray())
                if (Score(s, from, destination) >= 0) s.Deliver(from, payload, _stats);
            return;
        }
        if (Lookup(from, new NetEndpoint(destination, destinationPort)) is { } socket)
        {
            socket.Deliver(from, payload, _stats);
            return;
        }
        _stats.Drop(NetDrop.NoSocket);
        Ip.ReplyUnreachable(Icmp.CodePortUnreachable);
    }

    /// <summary>How well <paramref name="s"/> matches a datagram from <paramref name="from"/> to its address; -1: not at all.</summary>
    private static int Score(UdpSocket s, NetEndpoint from, IPv4Address to)
    {
        int score = 0;
        var local = s.LocalEndpoint.Address;
        if (!local.IsAny)
        {
            if (local != to) return -1;
            score += 4;
        }
        if (s.RemoteEndpoint is { } peer)
        {
            if (peer.Address != from.Address || (peer.Port != 0 && peer.Port != from.Port)) return -1;
            score += 8;
        }
        return score;
    }

    /// <summary>The socket a unicast datagram <paramref name="from"/> → <paramref name="to"/> is for, or null.</summary>
    private UdpSocket? Lookup(NetEndpoint from, NetEndpoint to)
    {
        if (!_ports.TryGetValue(to.Port, out var bound)) return null;
        UdpSocket? best = null;
        int bestScore = -1, reuseCount = 0;
        foreach (var s in bound)
        {
            int score = Score(s, from, to.Address);
            if (score < 0 || score < bestScore) continue;
            if (score > bestScore) reuseCount = 0;
            bestScore = score;
            best = s; // among equals the latest bound (Linux puts new sockets first in the chain)
            if (s.ReusePort) reuseCount++;
        }
        if (best is null || !best.ReusePort || reuseCount < 2) return best;
        // A SO_REUSEPORT group: one member by a hash of the 4-tuple, so a flow always meets the same socket.
        uint h = from.Address.Value ^ ((uint)from.Port << 16 | to.Port) * 0x9E3779B1u ^ to.Address.Value * 0x85EBCA77u;
        h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16; // murmur3's finalizer
        int pick = (int)(h % (uint)reuseCount);
        foreach (var s in bound)
            if (s.ReusePort && Score(s, from, to.Address) == bestScore && pick-- == 0) return s;
        return best;
    }

    public void IcmpError(int type, int code, IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> original, int nextHopMtu)
    {
        if (original.Length < 4) return;
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(original);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(original[2..]);
        // The socket that sent it: as if a datagram came back from where it went.
        if (Lookup(new NetEndpoint(destination, destinationPort), new NetEndpoint(source, sourcePort)) is not { } s) return;
        int errno = Icmp.ErrnoFor(type, code, out bool fatal);
        if (errno != 0) s.IcmpError(errno, fatal);
    }

    // ---- snapshot ----

    public void Save(BinaryWriter w) => Save(w, full: false);

    /// <summary>Something UDP saves changed since the last Save: a socket's state, the socket set, the port counters.</summary>
    internal bool SectionDirty { get; set; } = true;

    /// <summary>
    /// The ports, then the sockets by id, each from its cache unless it changed; the whole section is itself kept,
    /// so a checkpoint in which no UDP socket changed costs one copy of it. <paramref name="full"/>: every socket
    /// re-serialized (tests compare the two).
    /// </summary>
    public void Save(BinaryWriter w, bool full)
    {
        if (full || SectionDirty)
        {
            _section.SetLength(0);
            _sectionWriter.Write(_nextEphemeral);
            _sectionWriter.Write(_bindSequence);
            _sectionWriter.Write(_sockets.Count);
            _sectionWriter.Flush();
            foreach (var (id, s) in _sockets) s.Snapshot.Write(_section, id, s, _scratch, full);
            SectionDirty = false;
        }
        w.Write(_section.GetBuffer().AsSpan(0, (int)_section.Length));
    }

    public void Load(BinaryReader r)
    {
        _nextEphemeral = r.ReadInt32();
        _bindSequence = r.ReadInt64();
        int n = r.ReadInt32();
        if (n is < 0 or > NetLimits.MaxSockets) throw new InvalidDataException($"stack snapshot: {n} UDP sockets");
        var bound = new List<UdpSocket>();
        for (int i = 0; i < n; i++)
        {
            int id = r.ReadInt32();
            var s = new UdpSocket(this, id);
            using (var state = s.Snapshot.Read(r, id, 64 * 1024 * 1024)) s.LoadState(state);
            _sockets[id] = s;
            if (s.LocalEndpoint.Port != 0) bound.Add(s);
        }
        foreach (var s in bound.OrderBy(s => s.BindSequence))
        {
            if (!_ports.TryGetValue(s.LocalEndpoint.Port, out var list)) _ports[s.LocalEndpoint.Port] = list = [];
            list.Add(s);
        }
        SectionDirty = true;
    }
}
