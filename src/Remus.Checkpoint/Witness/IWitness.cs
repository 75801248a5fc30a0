namespace Remus.Checkpoint.Witness;

/// <summary>Who holds (or wants) a domain's active key: the value stored under it (docs/witness.md).</summary>
/// <param name="Host">The host's name.</param>
/// <param name="VmmPid">The VMM's pid on that host.</param>
/// <param name="Role">"primary" or "backup" (the copy that took over).</param>
public sealed record WitnessHolder(string Host, int VmmPid, string Role);

/// <summary>
/// The witness (issue 12) as the Remus engine sees it: a highly available store (etcd) holding, per protected domain,
/// a key that only the active copy holds, under a lease with a TTL. The etcd client lives in the Toolstack
/// (Witness/EtcdWitness.cs); the engine knows only this, so the fault-injection tests can use a fake.
/// </summary>
public interface IWitness : IDisposable
{
    /// <summary>
    /// Primary, before protection starts: takes the domain's key (creating it under a fresh lease of
    /// <paramref name="ttl"/>) and keeps the lease alive in the background. Throws <see cref="WitnessException"/> when
    /// the witness cannot be reached (with the endpoints tried) or another live copy holds the key (naming it).
    /// A key this same holder left (same host and domain, e.g. after `protect` was stopped) is taken over.
    /// </summary>
    IWitnessLease Acquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel);

    /// <summary>
    /// Backup, once the primary is silent: one attempt to take the key — an etcd transaction that succeeds only if the
    /// key does not exist (the old lease expired or was revoked). Null when another copy still holds it (the primary
    /// is alive somewhere: do not take over) or the witness cannot be reached.
    /// </summary>
    IWitnessLease? TryAcquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel);

    /// <summary>
    /// Who holds the domain's key now, for messages only (a backup that does not take over names the holder). Null
    /// when nobody does, the witness cannot be reached, or the implementation does not say.
    /// </summary>
    WitnessHolder? CurrentHolder(string domain, CancellationToken cancel) => null;
}

/// <summary>A held key, kept alive in the background until disposed (which revokes the lease: the key goes at once).</summary>
public interface IWitnessLease : IDisposable
{
    /// <summary>
    /// <see cref="System.Diagnostics.Stopwatch"/> timestamp until which this copy certainly holds the key: the send
    /// time of the last renewal the witness confirmed + TTL − safety margin (clock drift, by the monotonic clock).
    /// Output may be released only before it. Reading it is a field read (no I/O).
    /// </summary>
    long ValidUntil { get; }

    /// <summary>Set once the witness reports the key held by another copy, or gone: this copy must never run again.</summary>
    bool Lost { get; }

    /// <summary>The lease's TTL.</summary>
    TimeSpan Ttl { get; }

    /// <summary>Records the last committed epoch in the key's value (best effort, sent with a later renewal).</summary>
    void NoteEpoch(ulong epoch);

    /// <summary>
    /// The primary lost its backup (called before anything held is released): from now until the witness has
    /// recorded that this domain runs unprotected, <see cref="ValidUntil"/> is past — so a backup that is alive but cut
    /// off can never take over from a checkpoint older than output the world has seen. Never throws.
    /// </summary>
    void BeginUnprotected() { }
}

/// <summary>The witness refused or could not be reached; the message says which and names the endpoints or the holder.</summary>
public sealed class WitnessException(string message, Exception? inner = null) : Exception(message, inner);
