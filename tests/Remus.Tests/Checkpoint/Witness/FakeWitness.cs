using System.Diagnostics;
using Remus.Checkpoint.Witness;

namespace Remus.Tests.Checkpoint.Witness;

/// <summary>
/// The etcd cluster in process, for the engine's witness tests: one key per domain, held under a lease that expires
/// by the monotonic clock (a renewal sent at s keeps it until s + TTL, as etcd's server-side expiry is never earlier),
/// created only when absent or expired. The test can expire a key, steal it, and see who took it when.
/// </summary>
public sealed class FakeEtcd
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Key> _keys = [];
    private readonly List<Acquisition> _acquisitions = [];
    private long _nextLease;

    /// <summary>
    /// How much longer than the client's TTL the cluster keeps a lease (etcd rounds a TTL up to whole seconds and to
    /// its minimum): a client cut off for less than that finds its lease alive when it comes back.
    /// </summary>
    public TimeSpan ServerExtra { get; init; }

    private sealed class Key(long lease, WitnessHolder holder, long expiresAt)
    {
        public long Lease = lease;
        public WitnessHolder Holder = holder;
        public long ExpiresAt = expiresAt;
        public ulong Epoch;
    }

    /// <summary>A successful take of a key: by whom and when (Stopwatch timestamp of the transaction).</summary>
    public sealed record Acquisition(string Domain, WitnessHolder Holder, long At);

    public IReadOnlyList<Acquisition> Acquisitions
    {
        get { lock (_lock) return [.. _acquisitions]; }
    }

    /// <summary>Who holds the key now (null: nobody, or it expired).</summary>
    public WitnessHolder? Holder(string domain)
    {
        lock (_lock) return Live(domain, Stopwatch.GetTimestamp())?.Holder;
    }

    /// <summary>The epoch the holder last noted.</summary>
    public ulong? Epoch(string domain)
    {
        lock (_lock) return Live(domain, Stopwatch.GetTimestamp())?.Epoch;
    }

    /// <summary>The key's lease ends now (as if revoked by an operator, or its TTL ran out).</summary>
    public void Expire(string domain)
    {
        lock (_lock) _keys.Remove(domain);
    }

    /// <summary>Another copy takes the key (under a lease of its own that does not expire).</summary>
    public void Steal(string domain, WitnessHolder thief)
    {
        lock (_lock)
        {
            _keys[domain] = new Key(++_nextLease, thief, long.MaxValue);
            _acquisitions.Add(new Acquisition(domain, thief, Stopwatch.GetTimestamp()));
        }
    }

    private Key? Live(string domain, long now) =>
        _keys.TryGetValue(domain, out var k) && now < k.ExpiresAt ? k : null;

    /// <summary>The create transaction: succeeds if the key is absent (or expired), or <paramref name="sameHolder"/> and it is this holder's.</summary>
    internal long? TryCreate(string domain, WitnessHolder me, TimeSpan ttl, long sent, bool sameHolder, out WitnessHolder? other)
    {
        lock (_lock)
        {
            var k = Live(domain, Stopwatch.GetTimestamp());
            if (k != null && !(sameHolder && k.Holder.Host == me.Host && k.Holder.Role == me.Role))
            {
                other = k.Holder;
                return null;
            }
            other = null;
            long lease = ++_nextLease;
            _keys[domain] = new Key(lease, me, sent + Ticks(ttl + ServerExtra));
            _acquisitions.Add(new Acquisition(domain, me, Stopwatch.GetTimestamp()));
            return lease;
        }
    }

    /// <summary>A keep-alive sent at <paramref name="sent"/>: false if the key is gone or under another lease.</summary>
    internal bool Renew(string domain, long lease, TimeSpan ttl, long sent, ulong? epoch)
    {
        lock (_lock)
        {
            var k = Live(domain, Stopwatch.GetTimestamp());
            if (k == null || k.Lease != lease) return false;
            k.ExpiresAt = Math.Max(k.ExpiresAt, sent + Ticks(ttl + ServerExtra));
            if (epoch is { } e) k.Epoch = e;
            return true;
        }
    }

    internal void Revoke(string domain, long lease)
    {
        lock (_lock)
            if (_keys.TryGetValue(domain, out var k) && k.Lease == lease) _keys.Remove(domain);
    }

    internal static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);
}

/// <summary>
/// One host's client of the <see cref="FakeEtcd"/>: <see cref="Unreachable"/> partitions it from the cluster (its
/// requests and keep-alives fail; a dead process's keep-alives stop the same way). ValidUntil = the send time of the
/// last confirmed renewal + TTL − max(TTL/10, 20 ms), as the etcd witness computes it.
/// </summary>
public sealed class FakeWitness(FakeEtcd etcd, string name = "fake://etcd") : IWitness
{
    internal int _unprotectedMarks;

    /// <summary>How often a primary's lease was told its backup is lost (IWitnessLease.BeginUnprotected).</summary>
    public int UnprotectedMarks => Volatile.Read(ref _unprotectedMarks);

    /// <summary>This host cannot reach the witness (or is dead): requests throw or fail, keep-alives are lost.</summary>
    public volatile bool Unreachable;

    public FakeEtcd Etcd => etcd;

    public IWitnessLease Acquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel)
    {
        if (Unreachable) throw new WitnessException($"cannot reach the witness at {name} (no endpoint answered)");
        long sent = Stopwatch.GetTimestamp();
        var lease = etcd.TryCreate(domain, me, ttl, sent, sameHolder: true, out var other)
                    ?? throw new WitnessException($"domain '{domain}' is active on {other!.Host} (pid {other.VmmPid}, {other.Role})");
        return new FakeLease(this, domain, lease, ttl, sent);
    }

    public IWitnessLease? TryAcquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel)
    {
        if (Unreachable) return null;
        long sent = Stopwatch.GetTimestamp();
        var lease = etcd.TryCreate(domain, me, ttl, sent, sameHolder: false, out _);
        return lease == null ? null : new FakeLease(this, domain, lease.Value, ttl, sent);
    }

    public WitnessHolder? CurrentHolder(string domain, CancellationToken cancel) => Unreachable ? null : etcd.Holder(domain);

    public void Dispose() { }

    private sealed class FakeLease : IWitnessLease
    {
        private readonly FakeWitness _client;
        private readonly string _domain;
        private readonly long _lease;
        private readonly ManualResetEventSlim _stop = new();
        private readonly Thread _keepAlive;
        private long _validUntil;
        private volatile bool _lost;
        private long _epoch = -1;

        public FakeLease(FakeWitness client, string domain, long lease, TimeSpan ttl, long sent)
        {
            _client = client;
            _domain = domain;
            _lease = lease;
            Ttl = ttl;
            _validUntil = sent + FakeEtcd.Ticks(ttl - Margin(ttl));
            _keepAlive = new Thread(KeepAlive) { IsBackground = true, Name = "fake-witness-keepalive" };
            _keepAlive.Start();
        }

        private static TimeSpan Margin(TimeSpan ttl) => TimeSpan.FromTicks(Math.Max(ttl.Ticks / 10, TimeSpan.FromMilliseconds(20).Ticks));

        public long ValidUntil => Volatile.Read(ref _validUntil);
        public bool Lost => _lost;
        public TimeSpan Ttl { get; }
        public void NoteEpoch(ulong epoch) => Interlocked.Exchange(ref _epoch, (long)epoch);
        public void BeginUnprotected() => Interlocked.Increment(ref _client._unprotectedMarks);

        private void KeepAlive()
        {
            while (!_stop.Wait(Ttl / 3))
            {
                if (_client.Unreachable) continue; // the request never arrives: nothing learnt, ValidUntil not moved
                long sent = Stopwatch.GetTimestamp();
                long epoch = Interlocked.Read(ref _epoch);
                if (_client.Etcd.Renew(_domain, _lease, Ttl, sent, epoch < 0 ? null : (ulong)epoch))
                    Volatile.Write(ref _validUntil, sent + FakeEtcd.Ticks(Ttl - Margin(Ttl)));
                else
                {
                    _lost = true;
                    return;
                }
            }
        }

        public void Dispose()
        {
            _stop.Set();
            _keepAlive.Join();
            if (!_client.Unreachable) _client.Etcd.Revoke(_domain, _lease);
        }
    }
}
