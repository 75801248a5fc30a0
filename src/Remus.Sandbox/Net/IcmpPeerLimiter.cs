namespace Remus.Sandbox.Net;

/// <summary>
/// Linux's per-destination limit on ICMP errors (inet_peer_xrlim_allow with icmp_ratelimit 1000 ms): one error a
/// second to a given host, a burst of 6 (XRLIM_BURST_FACTOR), a host not seen before starting with the full burst.
/// Applied with the global <see cref="IcmpRateLimiter"/>. Remembers at most <see cref="MaxPeers"/> hosts (the least
/// recently limited makes room). Part of the checkpoint.
/// </summary>
internal sealed class IcmpPeerLimiter
{
    public const int MaxPeers = 256, Burst = 6;
    public const long IntervalNs = NetLimits.Second;

    private readonly Dictionary<IPv4Address, (long CreditNs, long LastNs)> _peers = [];

    public int Count => _peers.Count;

    public bool Allow(IPv4Address peer, long nowNs)
    {
        long cap = Burst * IntervalNs;
        long credit = cap;
        if (_peers.TryGetValue(peer, out var p)) credit = Math.Min(cap, p.CreditNs + Math.Max(0, nowNs - p.LastNs));
        else if (_peers.Count >= MaxPeers) _peers.Remove(_peers.MinBy(kv => kv.Value.LastNs).Key);
        bool allow = credit >= IntervalNs;
        if (allow) credit -= IntervalNs;
        _peers[peer] = (credit, nowNs);
        return allow;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_peers.Count);
        foreach (var (a, p) in _peers)
        {
            w.Write(a.Value);
            w.Write(p.CreditNs);
            w.Write(p.LastNs);
        }
    }

    public void Load(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n is < 0 or > MaxPeers) throw new InvalidDataException($"stack snapshot: {n} ICMP peers");
        _peers.Clear();
        for (int i = 0; i < n; i++) _peers[new IPv4Address(r.ReadUInt32())] = (r.ReadInt64(), r.ReadInt64());
    }
}
