namespace Remus.Sandbox.Net;

/// <summary>
/// A token bucket on the guest clock for the ICMP errors the stack sends (Linux's icmp_global_allow:
/// icmp_msgs_per_sec 1000, burst 50), so a flood of datagrams to closed ports or of fragments costs bounded work
/// and bounded traffic. The credit is kept in nanoseconds of refill, so no rounding loses tokens. Part of the checkpoint.
/// </summary>
internal sealed class IcmpRateLimiter(int perSecond, int burst)
{
    private readonly long _costNs = NetLimits.Second / perSecond;
    private long _creditNs = burst * (NetLimits.Second / perSecond);
    private long _lastNs = long.MinValue;

    public bool Allow(long nowNs)
    {
        long cap = burst * _costNs;
        if (_lastNs != long.MinValue && nowNs > _lastNs) _creditNs = Math.Min(cap, _creditNs + Math.Min(cap, nowNs - _lastNs));
        _lastNs = nowNs;
        if (_creditNs < _costNs) return false;
        _creditNs -= _costNs;
        return true;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_creditNs);
        w.Write(_lastNs);
    }

    public void Load(BinaryReader r)
    {
        _creditNs = r.ReadInt64();
        _lastNs = r.ReadInt64();
    }
}
