namespace Remus.Sandbox.Net.Arp;

/// <summary>
/// The neighbour cache (Linux's arp_tbl, much reduced): answers requests for our address, resolves next hops with
/// broadcast requests retried every second (3 tries), holding the datagrams sent meanwhile up to
/// <see cref="NetLimits.ArpQueueBytesPerNeighbour"/> per neighbour and <see cref="NetLimits.ArpQueueBytes"/> in all
/// (the oldest dropped first). A resolved entry is REACHABLE for 30 s, then STALE: still
/// used, but its first use starts DELAY (5 s) and then unicast PROBEs (3, a second apart) that drop it unless answered.
/// Every time is on the guest clock, so a restored table goes on where it was. At most <see cref="NetLimits.ArpMaxEntries"/>
/// entries: a flood of requests from new addresses evicts the least recently used resolved entry, never grows it.
/// </summary>
internal sealed class ArpTable
{
    private enum State : byte { Incomplete, Reachable, Stale, Delay, Probe }

    private sealed class Entry
    {
        public IPv4Address Ip;
        public MacAddress Mac;
        public State State;
        public long ConfirmedNs, UsedNs, DeadlineNs = long.MaxValue;
        public int Probes;
        public readonly Queue<PacketBuffer> Pending = new();
        public int PendingBytes;
    }

    private static int Charge(PacketBuffer p) => p.Length + NetLimits.DatagramOverhead;

    private readonly Dictionary<IPv4Address, Entry> _entries = [];
    private readonly Ethernet _eth;
    private readonly IPv4Address _address;
    private readonly Func<long> _now;
    private readonly NetStats _stats;
    private readonly PacketHandler _unresolved;
    private readonly Action _deadlineChanged;
    private long _nextDeadline = long.MaxValue;
    private bool _deadlineStale;
    private int _pendingBytes;
    private int _announcesLeft;
    private long _announceNs = long.MaxValue;

    /// <param name="unresolved">told of each held datagram dropped because its neighbour never answered</param>
    public ArpTable(Ethernet eth, IPv4Address address, Func<long> now, NetStats stats, PacketHandler unresolved, Action deadlineChanged)
    {
        _eth = eth;
        _address = address;
        _now = now;
        _stats = stats;
        _unresolved = unresolved;
        _deadlineChanged = deadlineChanged;
    }

    public int Count => _entries.Count;
    public int PendingDatagrams => _entries.Values.Sum(e => e.Pending.Count);

    /// <summary>What the held datagrams are charged (bytes plus <see cref="NetLimits.DatagramOverhead"/> each).</summary>
    public int PendingBytes => _pendingBytes;

    /// <summary>The MAC to send to <paramref name="ip"/> now, if known (a STALE entry starts its DELAY here).</summary>
    public bool TryResolve(IPv4Address ip, out MacAddress mac)
    {
        mac = default;
        if (!_entries.TryGetValue(ip, out var e) || e.State == State.Incomplete) return false;
        long now = _now();
        e.UsedNs = now;
        if (e.State == State.Reachable && now - e.ConfirmedNs >= NetLimits.ArpReachableNs) e.State = State.Stale;
        if (e.State == State.Stale)
        {
            e.State = State.Delay;
            Arm(e, now + NetLimits.ArpDelayNs);
        }
        mac = e.Mac;
        return true;
    }

    /// <summary>Holds a datagram for an unresolved neighbour, asking for it if this is the first.</summary>
    public void Enqueue(IPv4Address ip, ReadOnlySpan<byte> packet)
    {
        long now = _now();
        bool ask = false;
        if (!_entries.TryGetValue(ip, out var e))
        {
            if (!MakeRoom()) { _stats.Drop(NetDrop.ArpCacheFull); return; }
            e = new Entry { Ip = ip, State = State.Incomplete, UsedNs = now, Probes = 1 };
            _entries[ip] = e;
            ask = true;
        }
        // Copy before asking: the packet may sit in the frame buffer the request is built in.
        var copy = PacketBuffer.Copy(packet);
        e.Pending.Enqueue(copy);
        e.PendingBytes += Charge(copy);
        _pendingBytes += Charge(copy);
        // Over the neighbour's bound or the table's: the oldest held go first (this one last of all).
        while (e.PendingBytes > NetLimits.ArpQueueBytesPerNeighbour || _pendingBytes > NetLimits.ArpQueueBytes)
        {
            if (!e.Pending.TryDequeue(out var old)) break;
            Release(e, old);
            _stats.Drop(NetDrop.ArpQueueFull);
        }
        if (!ask) return;
        SendRequest(ip, MacAddress.Broadcast, default);
        Arm(e, now + NetLimits.ArpRetransNs);
    }

    /// <summary>An inbound ARP packet.</summary>
    public void Receive(ReadOnlySpan<byte> payload)
    {
        if (!ArpPacket.TryParse(payload, out var p)) { _stats.Drop(NetDrop.Malformed); return; }
        bool forUs = p.TargetIp == _address && !_address.IsAny;
        if (p.SenderIp.IsAny && forUs && p.Operation == ArpPacket.Request && !p.SenderMac.IsMulticast)
        {
            // An address probe (RFC 5227: a host checking 0.0.0.0 → our address is free): answered, nothing learned.
            new ArpPacket(ArpPacket.Reply, _eth.Mac, _address, p.SenderMac, IPv4Address.Any).Write(_eth.Payload);
            _eth.Transmit(p.SenderMac, Ethernet.TypeArp, ArpPacket.Length);
            return;
        }
        if (p.SenderMac.IsMulticast || p.SenderMac == _eth.Mac || p.SenderIp == _address || p.SenderIp.IsAny)
        {
            _stats.Drop(NetDrop.NotForUs);
            return;
        }
        _entries.TryGetValue(p.SenderIp, out var e);
        if (e is null && forUs && p.Operation == ArpPacket.Request)
        {
            // A neighbour asking for us will be talked to: learn it (STALE, as Linux's neigh_event_ns).
            if (MakeRoom())
            {
                e = new Entry { Ip = p.SenderIp, Mac = p.SenderMac, State = State.Stale, UsedNs = _now() };
                _entries[p.SenderIp] = e;
            }
        }
        else if (e is not null)
        {
            bool solicitedReply = p.Operation == ArpPacket.Reply && forUs;
            Update(e, p.SenderMac, solicitedReply);
        }
        if (forUs && p.Operation == ArpPacket.Request)
        {
            new ArpPacket(ArpPacket.Reply, _eth.Mac, _address, p.SenderMac, p.SenderIp).Write(_eth.Payload);
            _eth.Transmit(p.SenderMac, Ethernet.TypeArp, ArpPacket.Length);
        }
        else if (!forUs && e is null)
        {
            _stats.Drop(NetDrop.NotForUs);
        }
    }

    /// <summary>Gratuitous ARP: a request for our own address, now and once more a second later.</summary>
    public void Announce()
    {
        if (_address.IsAny) return;
        SendRequest(_address, MacAddress.Broadcast, default);
        _announcesLeft = 1;
        _announceNs = _now() + NetLimits.ArpRetransNs;
        _deadlineStale = true;
        _deadlineChanged();
    }

    public long NextDeadlineNs
    {
        get
        {
            if (_deadlineStale)
            {
                long d = _announceNs;
                foreach (var e in _entries.Values) d = Math.Min(d, e.DeadlineNs);
                _nextDeadline = d;
                _deadlineStale = false;
            }
            return _nextDeadline;
        }
    }

    public void RunTimers(long now)
    {
        if (NextDeadlineNs > now) return;
        if (_announceNs <= now)
        {
            SendRequest(_address, MacAddress.Broadcast, default);
            _announcesLeft = 0;
            _announceNs = long.MaxValue;
        }
        List<Entry>? failed = null;
        foreach (var e in _entries.Values)
        {
            if (e.DeadlineNs > now) continue;
            e.DeadlineNs = long.MaxValue;
            switch (e.State)
            {
                case State.Incomplete or State.Probe when e.Probes < NetLimits.ArpMaxProbes:
                    e.Probes++;
                    SendRequest(e.Ip, e.State == State.Probe ? e.Mac : MacAddress.Broadcast, e.State == State.Probe ? e.Mac : default);
                    e.DeadlineNs = now + NetLimits.ArpRetransNs;
                    break;
                case State.Incomplete or State.Probe:
                    (failed ??= []).Add(e);
                    break;
                case State.Delay: // a reply during the delay would have made it REACHABLE

                    e.State = State.Probe;
                    e.Probes = 1;
                    SendRequest(e.Ip, e.Mac, e.Mac);
                    e.DeadlineNs = now + NetLimits.ArpRetransNs;
                    break;
            }
        }
        _deadlineStale = true;
        if (failed is null) return;
        foreach (var e in failed)
        {
            _entries.Remove(e.Ip);
            while (e.Pending.TryDequeue(out var p))
            {
                _stats.Drop(NetDrop.ArpUnresolved);
                _unresolved(p.Span);
                Release(e, p);
            }
        }
    }

    private void Update(Entry e, MacAddress mac, bool confirmed)
    {
        long now = _now();
        bool changed = e.State == State.Incomplete || e.Mac != mac;
        e.Mac = mac;
        if (confirmed)
        {
            e.State = State.Reachable;
            e.ConfirmedNs = now;
            e.DeadlineNs = long.MaxValue;
            e.Probes = 0;
        }
        else if (changed)
        {
            e.State = State.Stale;
            e.DeadlineNs = long.MaxValue;
            e.Probes = 0;
        }
        _deadlineStale = true;
        while (e.Pending.TryDequeue(out var p))
        {
            _eth.Transmit(mac, Ethernet.TypeIpv4, p.Span);
            Release(e, p);
        }
    }

    private void Arm(Entry e, long deadline)
    {
        e.DeadlineNs = deadline;
        if (deadline < NextDeadlineNs)
        {
            _nextDeadline = deadline;
            _deadlineChanged();
        }
    }

    /// <summary>Makes room for one more entry: false when every entry is a resolution in progress.</summary>
    private bool MakeRoom()
    {
        if (_entries.Count < NetLimits.ArpMaxEntries) return true;
        Entry? victim = null;
        foreach (var e in _entries.Values)
            if (e.State != State.Incomplete && (victim is null || e.UsedNs < victim.UsedNs)) victim = e;
        if (victim is null) return false;
        _entries.Remove(victim.Ip);
        while (victim.Pending.TryDequeue(out var p)) Release(victim, p);
        _deadlineStale = true;
        return true;
    }

    private void Release(Entry e, PacketBuffer p)
    {
        e.PendingBytes -= Charge(p);
        _pendingBytes -= Charge(p);
        p.Return();
    }

    private void SendRequest(IPv4Address target, MacAddress frameDestination, MacAddress targetMac)
    {
        new ArpPacket(ArpPacket.Request, _eth.Mac, _address, targetMac, target).Write(_eth.Payload);
        _eth.Transmit(frameDestination, Ethernet.TypeArp, ArpPacket.Length);
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_announcesLeft);
        w.Write(_announceNs);
        w.Write(_entries.Count);
        foreach (var e in _entries.Values)
        {
            w.Write(e.Ip.Value);
            w.Write(e.Mac.Value);
            w.Write((byte)e.State);
            w.Write(e.ConfirmedNs);
            w.Write(e.UsedNs);
            w.Write(e.DeadlineNs);
            w.Write(e.Probes);
            w.Write(e.Pending.Count);
            foreach (var p in e.Pending) p.Save(w);
        }
    }

    public void Load(BinaryReader r)
    {
        _announcesLeft = r.ReadInt32();
        _announceNs = r.ReadInt64();
        int n = r.ReadInt32();
        if (n is < 0 or > NetLimits.ArpMaxEntries) throw new InvalidDataException($"stack snapshot: {n} ARP entries");
        _entries.Clear();
        _pendingBytes = 0;
        for (int i = 0; i < n; i++)
        {
            var e = new Entry
            {
                Ip = new IPv4Address(r.ReadUInt32()),
                Mac = new MacAddress(r.ReadUInt64()),
                State = (State)r.ReadByte(),
                ConfirmedNs = r.ReadInt64(),
                UsedNs = r.ReadInt64(),
                DeadlineNs = r.ReadInt64(),
                Probes = r.ReadInt32(),
            };
            int pending = r.ReadInt32();
            if (pending is < 0 or > NetLimits.ArpQueueBytesPerNeighbour / NetLimits.DatagramOverhead) throw new InvalidDataException("stack snapshot: ARP queue too long");
            for (int j = 0; j < pending; j++)
            {
                var p = PacketBuffer.Load(r);
                e.Pending.Enqueue(p);
                e.PendingBytes += Charge(p);
                _pendingBytes += Charge(p);
            }
            _entries[e.Ip] = e;
        }
        _deadlineStale = true;
    }
}
