using System.Diagnostics;
using Etcdserverpb;
using Remus.Checkpoint.Witness;

namespace Remus.Toolstack.Witness;

/// <summary>
/// The witness on etcd (issue 12, docs/witness.md): per protected domain the key /remus/domains/&lt;name&gt;/active,
/// value JSON {host, pid, role, epoch, time}, attached to a lease of the holder's. Acquire and TryAcquire are etcd
/// transactions that put the key only when it is absent (the old lease expired or was revoked), so at most one copy
/// holds it at any time; the holder keeps its lease alive from a background thread (<see cref="EtcdLease"/>).
/// Several endpoints (the members of one etcd cluster) with failover; every call has a deadline well under the TTL.
/// </summary>
public sealed class EtcdWitness : IWitness
{
    private readonly EtcdEndpoints _endpoints;
    private readonly Action<string>? _log;

    /// <param name="urls">The etcd members' client URLs (http://host:port).</param>
    /// <param name="log">Where lease events (lost, unreachable, back) are told; null for silence.</param>
    public EtcdWitness(IReadOnlyList<string> urls, Action<string>? log = null)
    {
        _endpoints = new EtcdEndpoints(urls);
        _log = log;
    }

    /// <summary>The URLs as given.</summary>
    public IReadOnlyList<string> Urls => _endpoints.Urls;

    internal EtcdEndpoints Endpoints => _endpoints;

    /// <summary>Deadline of one try of a call that is not on the lease's clock (Acquire, list).</summary>
    internal static TimeSpan SlowDeadline(TimeSpan ttl) => Clamp(ttl, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));

    /// <summary>Deadline of one try of a renewal: two tries fit in the renewal interval (TTL/3).</summary>
    internal static TimeSpan FastDeadline(TimeSpan ttl) => Clamp(ttl / 6, TimeSpan.FromMilliseconds(30), TimeSpan.FromSeconds(2));

    private static TimeSpan Clamp(TimeSpan t, TimeSpan min, TimeSpan max) => t < min ? min : t > max ? max : t;

    public IWitnessLease Acquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return AcquireAsync(domain, me, ttl, cancel).GetAwaiter().GetResult();
            }
            catch (EtcdRefusedException e) when (e.Code == Grpc.Core.StatusCode.NotFound && attempt < 3)
            {
                // Our fresh lease expired before the transaction that attaches the key to it (this process stalled
                // for a TTL): nothing was taken; try again with a new lease.
                _log?.Invoke($"witness: {e.Message}; trying again with a new lease");
            }
            catch (EtcdRefusedException e)
            {
                throw new WitnessException(e.Message, e);
            }
        }
    }

    private async Task<IWitnessLease> AcquireAsync(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel)
    {
        var key = EtcdKeys.Active(domain);
        var perTry = SlowDeadline(ttl);
        long granted = Stopwatch.GetTimestamp();
        long leaseId = await GrantAsync(ttl, perTry, cancel).ConfigureAwait(false);
        try
        {
            var value = WitnessValue.For(me, 0);
            var marker = EtcdKeys.Unprotected(domain);
            var txn = await TxnAsync("take the domain's key", perTry,
                new TxnRequest { Compare = { EtcdKeys.Absent(key) }, Success = { EtcdKeys.Put(key, value, leaseId), EtcdKeys.Delete(marker) }, Failure = { EtcdKeys.Get(key) } },
                cancel).ConfigureAwait(false);
            if (!txn.Succeeded)
            {
                var existing = EtcdKeys.Found(txn);
                var holder = existing is null ? null : WitnessValue.Parse(existing.Value.Span);
                if (existing is null || holder is null || holder.Host != me.Host)
                    throw new WitnessException(
                        $"domain {domain} is active elsewhere: the witness key {key.ToStringUtf8()} is held by " +
                        $"{holder?.Describe() ?? "an unknown holder"} (lease {existing?.Lease:x}); not protecting it here");
                // A key this host left for this domain (protect stopped or crashed before its lease ran out): ours again.
                var takeover = await TxnAsync("take over this host's leftover key", perTry,
                    new TxnRequest { Compare = { EtcdKeys.Unchanged(key, existing.ModRevision) }, Success = { EtcdKeys.Put(key, value, leaseId), EtcdKeys.Delete(marker) } },
                    cancel).ConfigureAwait(false);
                if (!takeover.Succeeded)
                    throw new WitnessException($"domain {domain}: the witness key changed while this host took over its own leftover key; try again");
                _log?.Invoke($"witness: took over this host's leftover key for domain {domain} ({holder.Describe()})");
            }
            return new EtcdLease(_endpoints, domain, key, leaseId, me, ttl, granted, _log);
        }
        catch
        {
            await RevokeQuietlyAsync(leaseId, perTry).ConfigureAwait(false);
            throw;
        }
    }

    public IWitnessLease? TryAcquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel)
    {
        var key = EtcdKeys.Active(domain);
        var perTry = Clamp(ttl / 4, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1));
        try
        {
            long granted = Stopwatch.GetTimestamp();
            long leaseId = GrantAsync(ttl, perTry, cancel).GetAwaiter().GetResult();
            var txn = TxnAsync("take the domain's key", perTry,
                // Only when nobody holds the key AND no primary went on without its backup since this copy's
                // checkpoints began (its copy is then older than what the world saw): see EtcdKeys.Unprotected.
                new TxnRequest
                {
                    Compare = { EtcdKeys.Absent(key), EtcdKeys.Absent(EtcdKeys.Unprotected(domain)) },
                    Success = { EtcdKeys.Put(key, WitnessValue.For(me, 0), leaseId) },
                    Failure = { EtcdKeys.Get(key) },
                },
                cancel).GetAwaiter().GetResult();
            if (txn.Succeeded) return new EtcdLease(_endpoints, domain, key, leaseId, me, ttl, granted, _log);
            RevokeQuietlyAsync(leaseId, perTry).GetAwaiter().GetResult();
            return null;
        }
        catch (Exception e) when (e is WitnessException or EtcdRefusedException)
        {
            _log?.Invoke($"witness: {e.Message}");
            return null;
        }
    }

    /// <summary>Who holds the key now, for messages; null when nobody does or the witness cannot be reached.</summary>
    public WitnessHolder? CurrentHolder(string domain, CancellationToken cancel)
    {
        try { return Holder(domain, cancel) is { } v ? new WitnessHolder(v.Host, v.Pid, v.Role) : null; }
        catch (Exception e) when (e is WitnessException or EtcdRefusedException) { return null; }
    }

    /// <summary>The current holder of <paramref name="domain"/>'s key, or null when nobody holds it.</summary>
    public WitnessValue? Holder(string domain, CancellationToken cancel = default)
    {
        var key = EtcdKeys.Active(domain);
        var range = _endpoints.CallAsync("read the domain's key", SlowDeadline(TimeSpan.FromSeconds(5)),
            (invoker, options) => EtcdEndpoints.Kv(invoker).RangeAsync(new RangeRequest { Key = key }, options).ResponseAsync, cancel)
            .GetAwaiter().GetResult();
        return range.Kvs.Count == 0 ? null : WitnessValue.Parse(range.Kvs[0].Value.Span);
    }

    /// <summary>Every domain under /remus/domains/ with its holder and the time left on the holder's lease.</summary>
    public List<WitnessDomain> ListDomains(CancellationToken cancel = default)
    {
        var perTry = SlowDeadline(TimeSpan.FromSeconds(5));
        var prefix = Google.Protobuf.ByteString.CopyFromUtf8(EtcdKeys.Prefix);
        var range = _endpoints.CallAsync("list the domains", perTry,
            (invoker, options) => EtcdEndpoints.Kv(invoker).RangeAsync(new RangeRequest { Key = prefix, RangeEnd = EtcdKeys.RangeEnd(prefix) }, options).ResponseAsync,
            cancel).GetAwaiter().GetResult();
        var rows = new List<WitnessDomain>();
        foreach (var kv in range.Kvs)
        {
            if (EtcdKeys.DomainOf(kv.Key) is not { } name) continue;
            var value = WitnessValue.Parse(kv.Value.Span);
            long? granted = null, left = null;
            if (kv.Lease != 0)
            {
                var ttl = _endpoints.CallAsync("read the holder's lease", perTry,
                    (invoker, options) => EtcdEndpoints.Leases(invoker).LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = kv.Lease }, options).ResponseAsync,
                    cancel).GetAwaiter().GetResult();
                granted = ttl.GrantedTTL;
                left = Math.Max(0, ttl.TTL); // whole seconds, rounded down; -1 when the lease just expired
            }
            rows.Add(new WitnessDomain(name, value?.Host, value?.Pid, value?.Role, value?.Epoch, granted, left));
        }
        return rows.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    private async Task<long> GrantAsync(TimeSpan ttl, TimeSpan perTry, CancellationToken cancel)
    {
        var grant = await _endpoints.CallAsync("grant a lease", perTry,
            (invoker, options) => EtcdEndpoints.Leases(invoker).LeaseGrantAsync(new LeaseGrantRequest { TTL = EtcdKeys.TtlSeconds(ttl) }, options).ResponseAsync,
            cancel).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(grant.Error)) throw new WitnessException($"the witness refused a lease: {grant.Error}");
        return grant.ID;
    }

    private Task<TxnResponse> TxnAsync(string what, TimeSpan perTry, TxnRequest request, CancellationToken cancel) =>
        _endpoints.CallAsync(what, perTry, (invoker, options) => EtcdEndpoints.Kv(invoker).TxnAsync(request, options).ResponseAsync, cancel);

    private async Task RevokeQuietlyAsync(long leaseId, TimeSpan perTry)
    {
        try
        {
            await _endpoints.CallAsync("revoke the lease", perTry,
                (invoker, options) => EtcdEndpoints.Leases(invoker).LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, options).ResponseAsync,
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WitnessException or EtcdRefusedException) { /* it expires by itself */ }
    }

    public void Dispose() => _endpoints.Dispose();
}
