namespace Remus.Sandbox.Net.Ipv4;

/// <summary>
/// Path MTUs learned from ICMP "fragmentation needed" (RFC 1191, as Linux's route exceptions): a smaller MTU for a
/// destination, never below 552 (min_pmtu), forgotten after 10 minutes (mtu_expires) so a grown path is found again.
/// At most <see cref="MaxEntries"/> destinations (the one expiring first makes room). Expiry is checked on lookup:
/// no timer. Part of the checkpoint.
/// </summary>
internal sealed class PathMtu
{
    public const int MaxEntries = 256, MinMtu = 552;
    public const long ExpiresNs = 600 * NetLimits.Second;

    private readonly Dictionary<IPv4Address, (int Mtu, long ExpiresNs)> _entries = [];

    public int Count => _entries.Count;

    /// <summary>The MTU towards <paramref name="destination"/> (<paramref name="linkMtu"/> unless a smaller one was learned).</summary>
    public int For(IPv4Address destination, int linkMtu, long now)
    {
        if (_entries.Count == 0 || !_entries.TryGetValue(destination, out var e)) return linkMtu;
        if (e.ExpiresNs <= now)
        {
            _entries.Remove(destination);
            return linkMtu;
        }
        return Math.Min(e.Mtu, linkMtu);
    }

    /// <summary>An ICMP "fragmentation needed" about a datagram to <paramref name="destination"/>.</summary>
    public void Learn(IPv4Address destination, int nextHopMtu, int linkMtu, long now)
    {
        // RFC 1191: a router that does not say (0) leaves the next plateau below what we sent; Linux then keeps min_pmtu.
        int mtu = Math.Clamp(nextHopMtu == 0 ? MinMtu : nextHopMtu, MinMtu, linkMtu);
        if (mtu >= For(destination, linkMtu, now)) return;
        if (!_entries.ContainsKey(destination) && _entries.Count >= MaxEntries)
        {
            var victim = _entries.MinBy(kv => kv.Value.ExpiresNs).Key;
            _entries.Remove(victim);
        }
        _entries[destination] = (mtu, now + ExpiresNs);
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_entries.Count);
        foreach (var (d, e) in _entries)
        {
            w.Write(d.Value);
            w.Write(e.Mtu);
            w.Write(e.ExpiresNs);
        }
    }

    public void Load(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n is < 0 or > MaxEntries) throw new InvalidDataException($"stack snapshot: {n} path MTUs");
        _entries.Clear();
        for (int i = 0; i < n; i++) _entries[new IPv4Address(r.ReadUInt32())] = (r.ReadInt32(), r.ReadInt64());
    }
}
