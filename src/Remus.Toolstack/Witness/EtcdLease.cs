using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Remus.Checkpoint.Witness;

namespace Remus.Toolstack.Witness;

/// <summary>
/// A held witness key and its lease, renewed every TTL/3 on a background thread. After each renewal the witness
/// confirms, <see cref="ValidUntil"/> = the renewal's send time + TTL − margin (max(TTL/10, 20 ms)): etcd counts the
/// lease's TTL from when the leader receives the renewal, which is after we sent it, so until then the key is
/// certainly ours whatever happens to the network. Each round also checks, in one transaction, that the key is still
/// attached to our lease (and writes the epoch noted since the last round); a renewal answered "lease gone" or a key
/// found under another lease or absent sets <see cref="Lost"/> for good.
/// </summary>
internal sealed class EtcdLease : IWitnessLease
{
    private readonly EtcdEndpoints _endpoints;
    private readonly string _domain;
    private readonly ByteString _key;
    private readonly long _leaseId;
    private readonly WitnessHolder _holder;
    private readonly Action<string>? _log;
    private readonly long _ttlTicks;
    private readonly long _marginTicks;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _validUntil;
    private volatile bool _lost;
    private long _epoch;
    private readonly object _validGate = new();
    private long _markerWanted; // BeginUnprotected calls so far
    private long _markerDone;   // of those, how many the witness has confirmed (the marker written under our key)
    private readonly AutoResetEvent _wake = new(false);
    private long _writtenEpoch;
    private int _disposed;

    public EtcdLease(EtcdEndpoints endpoints, string domain, ByteString key, long leaseId, WitnessHolder holder,
        TimeSpan ttl, long grantSentAt, Action<string>? log)
    {
        _endpoints = endpoints;
        _domain = domain;
        _key = key;
        _leaseId = leaseId;
        _holder = holder;
        _log = log;
        Ttl = ttl;
        _ttlTicks = (long)(ttl.TotalSeconds * Stopwatch.Frequency);
        _marginTicks = (long)(Margin(ttl).TotalSeconds * Stopwatch.Frequency);
        _validUntil = grantSentAt + _ttlTicks - _marginTicks;
        _thread = new Thread(KeepAlive) { IsBackground = true, Name = $"witness-lease-{domain}" };
        _thread.Start();
    }

    /// <summary>The safety margin for clock drift between us and the etcd leader: max(TTL/10, 20 ms).</summary>
    public static TimeSpan Margin(TimeSpan ttl) => ttl / 10 > TimeSpan.FromMilliseconds(20) ? ttl / 10 : TimeSpan.FromMilliseconds(20);

    public long ValidUntil => Volatile.Read(ref _validUntil);
    public bool Lost => _lost;
    public TimeSpan Ttl { get; }

    /// <summary>Why the lease was lost (for messages); null while it is not.</summary>
    public string? LostReason { get; private set; }

    /// <summary>The etcd lease id.</summary>
    public long LeaseId => _leaseId;

    public void NoteEpoch(ulong epoch) => Volatile.Write(ref _epoch, (long)epoch);

    /// <summary>
    /// The backup is lost: <see cref="ValidUntil"/> is past at once and stays so until a renewal round has written the
    /// unprotected marker (EtcdKeys.Unprotected) in a transaction that also found the key still ours.
    /// </summary>
    public void BeginUnprotected()
    {
        lock (_validGate)
        {
            _markerWanted++;
            Volatile.Write(ref _validUntil, long.MinValue);
        }
        try { _wake.Set(); } catch (ObjectDisposedException) { }
    }

    private void KeepAlive()
    {
        var interval = Ttl / 3;
        var retry = Ttl / 10 > TimeSpan.FromMilliseconds(10) ? Ttl / 10 : TimeSpan.FromMilliseconds(10);
        bool unreachable = false;
        var next = interval;
        var waits = new[] { _stop.Token.WaitHandle, _wake };
        while (WaitHandle.WaitAny(waits, next) != 0)
        {
            long roundStart = Stopwatch.GetTimestamp();
            try
            {
                RenewOnce(roundStart).GetAwaiter().GetResult();
                if (_lost) return;
                if (unreachable) _log?.Invoke($"witness: renewing the lease of domain {_domain} again");
                unreachable = false;
                var spent = Stopwatch.GetElapsedTime(roundStart);
                next = spent < interval ? interval - spent : TimeSpan.Zero;
            }
            catch (EtcdRefusedException e) when (e.Code == Grpc.Core.StatusCode.NotFound)
            {
                SetLost($"the witness says the lease of domain {_domain} is gone ({e.Message})");
                return;
            }
            catch (Exception e) when (e is WitnessException or EtcdRefusedException)
            {
                if (!unreachable) _log?.Invoke($"witness: cannot renew the lease of domain {_domain}: {e.Message}");
                unreachable = true;
                next = retry; // the lease runs out meanwhile: try again soon rather than a whole interval later
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return; // disposed during a call (gRPC may report it as RpcException Cancelled)
            }
            catch (ObjectDisposedException)
            {
                return; // the witness was disposed first: no more renewals, and ValidUntil runs out
            }
            catch (Exception e)
            {
                // Anything else (a gRPC or HTTP surprise) counts as a failed round: this thread must never take the
                // VMM down, and a failed round only lets ValidUntil run out.
                if (!unreachable) _log?.Invoke($"witness: cannot renew the lease of domain {_domain}: {e.GetType().Name}: {e.Message}");
                unreachable = true;
                next = retry;
            }
        }
    }

    private async Task RenewOnce(long sentAt)
    {
        var perTry = EtcdWitness.FastDeadline(Ttl);
        long ttlLeft = await _endpoints.CallAsync("renew the lease", perTry, KeepAliveOnce, _stop.Token).ConfigureAwait(false);
        if (ttlLeft <= 0)
        {
            SetLost($"the witness says the lease of domain {_domain} is gone (expired or revoked)");
            return;
        }
        long until = sentAt + _ttlTicks - _marginTicks;

        // Still ours? One transaction: the key is attached to our lease (then write the epoch if it moved, and the
        // unprotected marker if asked), else read it.
        long epoch = Volatile.Read(ref _epoch);
        long wanted = Volatile.Read(ref _markerWanted);
        var request = new TxnRequest { Compare = { EtcdKeys.HeldBy(_key, _leaseId) }, Failure = { EtcdKeys.Get(_key) } };
        if (epoch != _writtenEpoch) request.Success.Add(EtcdKeys.Put(_key, WitnessValue.For(_holder, (ulong)epoch), _leaseId));
        if (wanted > Volatile.Read(ref _markerDone)) request.Success.Add(EtcdKeys.Put(EtcdKeys.Unprotected(_domain), WitnessValue.For(_holder, (ulong)epoch), 0));
        var txn = await _endpoints.CallAsync("check the domain's key", perTry,
            (invoker, options) => EtcdEndpoints.Kv(invoker).TxnAsync(request, options).ResponseAsync, _stop.Token).ConfigureAwait(false);
        if (txn.Succeeded)
        {
            _writtenEpoch = epoch;
            lock (_validGate)
            {
                if (wanted > _markerDone) _markerDone = wanted;
                // Valid again only once every BeginUnprotected so far is confirmed (one may have come meanwhile).
                if (_markerDone >= _markerWanted && until > Volatile.Read(ref _validUntil)) Volatile.Write(ref _validUntil, until);
            }
            return;
        }
        var other = EtcdKeys.Found(txn);
        var holder = other is null ? null : WitnessValue.Parse(other.Value.Span);
        SetLost(other is null
            ? $"the witness key of domain {_domain} is gone"
            : $"the witness key of domain {_domain} is held by another copy ({holder?.Describe() ?? "unknown holder"})");
    }

    private async Task<long> KeepAliveOnce(CallInvoker invoker, CallOptions options)
    {
        using var call = EtcdEndpoints.Leases(invoker).LeaseKeepAlive(options);
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = _leaseId }).ConfigureAwait(false);
        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
        if (!await call.ResponseStream.MoveNext(options.CancellationToken).ConfigureAwait(false))
            throw new RpcException(new Status(StatusCode.Unavailable, "the keep-alive stream ended without an answer"));
        return call.ResponseStream.Current.TTL;
    }

    private void SetLost(string reason)
    {
        LostReason = reason;
        Volatile.Write(ref _validUntil, long.MinValue);
        _lost = true;
        _log?.Invoke($"witness: LOST: {reason}; this copy must not run again");
    }

    /// <summary>Stops renewing and revokes the lease (the key goes at once), unless it was lost.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _thread.Join();
        Volatile.Write(ref _validUntil, long.MinValue);
        if (!_lost)
        {
            try
            {
                _endpoints.CallAsync("revoke the lease", EtcdWitness.FastDeadline(Ttl),
                    (invoker, options) => EtcdEndpoints.Leases(invoker).LeaseRevokeAsync(new LeaseRevokeRequest { ID = _leaseId }, options).ResponseAsync,
                    CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is WitnessException or EtcdRefusedException or ObjectDisposedException)
            {
                _log?.Invoke($"witness: could not revoke the lease of domain {_domain} (it expires by itself): {e.Message}");
            }
        }
        _stop.Dispose();
        _wake.Dispose();
    }
}
