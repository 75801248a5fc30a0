using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// The iterative pre-copy shared by live migration and Remus's initial synchronisation (the seed reuses its
/// migration code the same way): start the dirty log (and the volumes' copy), send every populated page (and every
/// volume) while the domain runs, then the pages (and paths) dirtied meanwhile, round after round, while the rounds
/// shrink. Each round is an epoch of the stream, or several when its volume data is large (<see cref="VolumeCopy"/>).
/// </summary>
internal static class PreCopy
{
    /// <summary>
    /// Waits until the receiver has applied the pre-copy epochs <paramref name="from"/> .. <paramref name="to"/> − 1, so
    /// that the pause that follows does not also wait for a backlog of bytes still in flight (it would all count as downtime).
    /// </summary>
    public static void AwaitAcks(AckPump acks, ulong to, TimeSpan timeout, ulong from = 0)
    {
        for (ulong e = from; e < to; e++)
        {
            var ack = acks.Next(timeout, $"the receiver's acknowledgement of pre-copy epoch {e}")
                      ?? throw new IOException("the receiver closed the channel during the pre-copy");
            if (ack.Epoch != e) throw new CheckpointStreamException(CheckpointStreamError.Protocol, $"the receiver acknowledged epoch {ack.Epoch}, expected {e}");
        }
    }

    /// <summary>
    /// Runs the rounds. On return <paramref name="dirty"/> holds the pages dirtied since the last round (not sent);
    /// the caller pauses, harvests once more into it and sends the rest with the state (and, with volumes, the last
    /// copy round, paused). Returns the next epoch number. The writer is taken under <paramref name="gate"/> one
    /// record (or one round of pages) at a time.
    /// </summary>
    public static ulong Run(ICheckpointable domain, CheckpointWriter writer, ulong[] dirty, int maxRounds, int stopCopyPages,
        Action<MigrationProgress>? progress, ref long pagesSent, VolumeCopy? volumes = null, object? gate = null)
    {
        gate ??= new object();
        bool wasPaused = domain.State == DomainState.Paused;
        domain.Pause();
        try
        {
            domain.StartDirtyLog();
            domain.MarkPopulatedPages(dirty);
            volumes?.Replica.BeginCopy(); // from here every path the program changes is remembered
        }
        finally
        {
            if (!wasPaused) domain.Unpause();
        }

        var pages = new DomainPages(domain);
        ulong[] pfns = DomainPages.Set(dirty, domain);
        long previous = long.MaxValue, previousVolume = long.MaxValue;
        ulong epoch = 0;
        for (int round = 0; ; round++)
        {
            Array.Clear(dirty);
            lock (gate) writer.WritePages(pfns, pages);
            long volumeBytes = 0;
            if (volumes != null)
            {
                volumes.NextEpoch = epoch;
                volumeBytes = volumes.Round();
                epoch = volumes.NextEpoch;
            }
            lock (gate) writer.EndCheckpoint(epoch);
            epoch++;
            pagesSent += pfns.Length;
            domain.HarvestDirty(dirty);
            var next = DomainPages.Set(dirty, domain);
            bool memoryDone = next.Length <= stopCopyPages || (round > 0 && next.Length >= previous);
            bool volumesDone = volumes == null || volumeBytes <= VolumeCopy.StopCopyBytes || (round > 0 && volumeBytes >= previousVolume);
            bool stop = (memoryDone && volumesDone) || round + 1 >= maxRounds;
            BytesWritten(writer, gate, out long bytes);
            progress?.Invoke(new MigrationProgress(round, pagesSent, bytes, pfns.Length, next.Length, stop));
            if (stop) return epoch;
            previous = next.Length;
            previousVolume = volumeBytes;
            pfns = next;
        }
    }

    private static void BytesWritten(CheckpointWriter writer, object gate, out long bytes)
    {
        lock (gate) bytes = writer.Statistics.BytesWritten;
    }
}
