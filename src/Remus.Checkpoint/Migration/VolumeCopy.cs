using Remus.Checkpoint.Stream;
using Remus.Sandbox.Volumes;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// The volume side of a copy (initial synchronisation, migration, save): rounds of
/// <see cref="IVolumeReplica.DrainCopy"/> written as VOLUME_OPS records. A receiver buffers an epoch whole before it
/// applies it, so a round that is large (the first sends every volume whole) is split: the open epoch is closed
/// every <see cref="EpochBytes"/> of VOLUME_OPS and the round goes on in the next one. The writer is taken under
/// <c>gate</c> one record at a time, so a Remus primary's heartbeat thread can write between records while the
/// replica reads a large file.
/// </summary>
internal sealed class VolumeCopy(IVolumeReplica replica, CheckpointWriter writer, object gate)
{
    /// <summary>Default bytes of VOLUME_OPS per epoch before a round's epoch is closed and another begun (64 MiB).</summary>
    public const long DefaultEpochBytes = 64L << 20;

    /// <summary>A round that sent no more than this (4 MiB) is small enough for the paused last round.</summary>
    public const long StopCopyBytes = 4L << 20;

    public IVolumeReplica Replica => replica;

    /// <summary>VOLUME_OPS bytes after which an epoch is closed in the middle of a round.</summary>
    public long EpochBytes { get; init; } = DefaultEpochBytes;

    /// <summary>The number the open epoch will be closed with; advanced by every split.</summary>
    public ulong NextEpoch { get; set; }

    /// <summary>Called after each record written (outside the gate): a liveness stamp.</summary>
    public Action? Wrote { get; init; }

    /// <summary>Called after an epoch was closed in the middle of a round (outside the gate), with its number.</summary>
    public Action<ulong>? EpochClosed { get; init; }

    /// <summary>VOLUME_OPS bodies written in the last round.</summary>
    public long RoundBytes { get; private set; }

    /// <summary>Bytes of file data the replica reported for the last round.</summary>
    public long RoundDataBytes { get; private set; }

    /// <summary>VOLUME_OPS bodies written in every round so far.</summary>
    public long TotalBytes { get; private set; }

    private long _inEpoch;

    /// <summary>
    /// One round, into the open epoch (which the caller closes); with <paramref name="split"/> the epoch is closed
    /// and a new one opened whenever <see cref="EpochBytes"/> is reached. Returns the body bytes written.
    /// </summary>
    public long Round(bool split = true)
    {
        RoundBytes = 0;
        _inEpoch = 0;
        RoundDataBytes = replica.DrainCopy(body => Write(body, split));
        return RoundBytes;
    }

    private void Write(ReadOnlySpan<byte> body, bool split)
    {
        lock (gate) writer.WriteVolumeOps(body);
        RoundBytes += body.Length;
        TotalBytes += body.Length;
        _inEpoch += body.Length;
        Wrote?.Invoke();
        if (!split || _inEpoch < EpochBytes) return;
        ulong closed = NextEpoch;
        lock (gate) writer.EndCheckpoint(closed);
        NextEpoch = closed + 1;
        _inEpoch = 0;
        EpochClosed?.Invoke(closed);
    }
}
