using Remus.Checkpoint.Witness;

namespace Remus.Toolstack.Witness;

/// <summary>
/// The witness as a `migrate-receive -r` backup hands it to the engine: the backup learns the domain's name only from
/// the stream (its config), after RemusOptions were made, so a call with no domain name uses the arriving domain's.
/// </summary>
internal sealed class ArrivingDomainWitness(IWitness inner, Func<string?> arrivingName) : IWitness
{
    private string Name(string domain) => domain.Length > 0 ? domain
        : arrivingName() ?? throw new WitnessException("the domain's name is not known yet (no checkpoint stream header)");

    public IWitnessLease Acquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel) =>
        inner.Acquire(Name(domain), me, ttl, cancel);

    public IWitnessLease? TryAcquire(string domain, WitnessHolder me, TimeSpan ttl, CancellationToken cancel) =>
        inner.TryAcquire(Name(domain), me, ttl, cancel);

    public WitnessHolder? CurrentHolder(string domain, CancellationToken cancel) =>
        domain.Length > 0 || arrivingName() is not null ? inner.CurrentHolder(Name(domain), cancel) : null;

    public void Dispose() => inner.Dispose();
}
