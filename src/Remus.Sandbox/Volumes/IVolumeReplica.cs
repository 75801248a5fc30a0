namespace Remus.Sandbox.Volumes;

/// <summary>
/// A domain's volumes as the checkpoint engine replicates them (issue 10; <see cref="ICheckpointable.Volumes"/>). The
/// engine sees only opaque batches, each the body of one VOLUME_OPS record (docs/stream-format.md), handed over in
/// order; what they hold (file content, namespace changes, data writes) is this side's business.
/// <para>
/// <b>Sender</b>: a copy is made like memory pre-copy — <see cref="BeginCopy"/>, then rounds of <see cref="DrainCopy"/>
/// while the domain runs (the first sends everything; each later one what changed since), the last one paused; then,
/// still paused, <see cref="BeginJournal"/>, and from there each checkpoint's pause calls <see cref="DrainJournal"/>
/// for exactly the mutations of that epoch, in the order the program made them. A save is BeginCopy + one DrainCopy, paused.
/// </para>
/// <para>
/// <b>Receiver</b>: each batch is <see cref="Validate"/>d when its epoch arrives and <see cref="Apply"/>d, in order, when
/// the epoch is applied (a Remus backup: after CHECKPOINT_END verified and before the ack; nothing of an epoch that
/// does not arrive whole). The copy is built in a staging directory; <see cref="Commit"/> makes it the volume.
/// </para>
/// </summary>
public interface IVolumeReplica
{
    /// <summary>Sender: starts a copy. From here every path the program changes is remembered for the next round.</summary>
    void BeginCopy();

    /// <summary>
    /// Sender: one round of the copy, as VOLUME_OPS bodies handed to <paramref name="emit"/> in order (each at most
    /// <see cref="MaxBatchBytes"/>). The first round after <see cref="BeginCopy"/> sends every volume whole (read
    /// live); later rounds send what changed since the round before. Returns the bytes of file data sent.
    /// </summary>
    long DrainCopy(Action<ReadOnlySpan<byte>> emit);

    /// <summary>Sender, paused, right after the last <see cref="DrainCopy"/>: from here each mutation is journaled exactly.</summary>
    void BeginJournal();

    /// <summary>Sender, paused: the mutations since <see cref="BeginJournal"/> or the last call, as VOLUME_OPS bodies.</summary>
    long DrainJournal(Action<ReadOnlySpan<byte>> emit);

    /// <summary>Sender: stops remembering and journaling (protection or migration ended); nothing is kept.</summary>
    void StopTracking();

    /// <summary>Receiver: checks a body's framing and bounds without applying it; <see cref="InvalidDataException"/> if bad.</summary>
    void Validate(ReadOnlySpan<byte> body);

    /// <summary>
    /// Receiver: applies one body to this side's copy. Throws when it cannot (disk full, a path that should exist does
    /// not): the copy is then inconsistent with the sender's and must never run.
    /// </summary>
    void Apply(ReadOnlySpan<byte> body);

    /// <summary>
    /// Receiver: the copy is complete and becomes the domain's volumes — staging moved into place at each
    /// <see cref="VolumeSpec.HostPath"/> (waiting up to <paramref name="patience"/> for a VMM on this host to let go of
    /// it; content found there is kept aside and said through <paramref name="say"/>). Open files stay open.
    /// </summary>
    void Commit(TimeSpan patience, Action<string>? say);

    /// <summary>The largest body a batch may have (the stream's bound for VOLUME_OPS).</summary>
    public const int MaxBatchBytes = (4 << 20) + 65536;
}
