namespace Remus.Sandbox.Volumes;

/// <summary>
/// <see cref="IVolumeReplica"/> over a domain's volume table: the sender side drives a <see cref="VolumeJournal"/>
/// (hung on the table only while tracking, so an unprotected domain's file system pays a null check) and a
/// <see cref="VolumeWalker"/> for the copy rounds; the receiver side a <see cref="VolumeApplier"/> confined to its
/// staging roots, and <see cref="VolumeCommit"/>.
/// </summary>
internal sealed class VolumeReplica : IVolumeReplica
{
    private readonly IVolumeRoots _roots;
    private readonly VolumeJournal _journal = new();
    private readonly VolumeApplier _applier;
    private VolumeWalker? _walker;
    private readonly HashSet<int> _committed = [];
    private bool _firstRound;

    public VolumeReplica(IVolumeRoots roots)
    {
        _roots = roots;
        _applier = new VolumeApplier(roots);
    }

    internal VolumeJournal Journal => _journal;

    public void BeginCopy()
    {
        _journal.SetMode(VolumeTracking.Copy);
        _roots.Journal = _journal;
        _walker = new VolumeWalker(_roots);
        _firstRound = true;
    }

    public long DrainCopy(Action<ReadOnlySpan<byte>> emit)
    {
        var walker = _walker ?? throw new InvalidOperationException("DrainCopy before BeginCopy");
        if (_firstRound)
        {
            _firstRound = false;
            return walker.SendAll(emit);
        }
        return walker.SendPaths(_journal.TakeDirty(), emit);
    }

    public void BeginJournal()
    {
        _journal.SetMode(VolumeTracking.Journal);
        _roots.Journal = _journal;
        _walker = null;
    }

    public long DrainJournal(Action<ReadOnlySpan<byte>> emit) => _journal.Drain(emit);

    public void StopTracking()
    {
        _roots.Journal = null;
        _journal.SetMode(VolumeTracking.Off);
        _walker = null;
    }

    public void Validate(ReadOnlySpan<byte> body) => _applier.Validate(body);

    public void Apply(ReadOnlySpan<byte> body) => _applier.Apply(body);

    public void Commit(TimeSpan patience, Action<string>? say)
    {
        for (int v = 0; v < _roots.Count; v++)
        {
            var spec = _roots.Spec(v);
            if (spec.Tmpfs || _committed.Contains(v)) continue;
            VolumeCommit.Commit(spec, patience, say);
            _roots.Repoint(v, spec.HostPath.TrimEnd('/'));
            _committed.Add(v);
        }
    }
}
