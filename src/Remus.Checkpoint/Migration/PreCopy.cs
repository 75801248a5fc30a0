using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// The iterative pre-copy shared by live migration and Remus's initial synchronisation (the seed reuses its
/// migration code the same way): start the dirty log, send every populated page while the domain runs, then the
/// pages dirtied meanwhile, round after round, while the rounds shrink. Each round is an epoch of the stream.
/// </summary>
internal static class PreCopy
{
    /// <summary>
    /// Waits until the receiver has applied the <paramref name="epochs"/> pre-copy rounds, so that the pause that
    /// follows does not also wait for a backlog of bytes still in flight (it would all count as downtime).
    /// </summary>
    public static void AwaitAcks(AckPump acks, ulong epochs, TimeSpan timeout)
    {
        for (ulong e = 0; e < epochs; e++)
        {
            var ack = acks.Next(timeout, $"the receiver's acknowledgement of pre-copy round {e}")
                      ?? throw new IOException("the receiver closed the channel during the pre-copy");
            if (ack.Epoch != e) throw new CheckpointStreamException(CheckpointStreamError.Protocol, $"the receiver acknowledged round {ack.Epoch}, expected {e}");
        }
    }

    /// <summary>
    /// Runs the rounds. On return <paramref name="dirty"/> holds the pages dirtied since the last round (not sent);
    /// the caller pauses, harvests once more into it and sends the rest with the state. Returns the next epoch number.
    /// </summary>
    public static ulong Run(ICheckpointable domain, CheckpointWriter writer, ulong[] dirty, int maxRounds, int stopCopyPages,
        Action<MigrationProgress>? progress, ref long pagesSent)
    {
        bool wasPaused = domain.State == DomainState.Paused;
        domain.Pause();
        try
        {
            domain.StartDirtyLog();
            domain.MarkPopulatedPages(dirty);
        }
        finally
        {
            if (!wasPaused) domain.Unpause();
        }

        var pages = new DomainPages(domain);
        ulong[] pfns = DomainPages.Set(dirty, domain);
        long previous = long.MaxValue;
        for (int round = 0; ; round++)
        {
            Array.Clear(dirty);
            writer.WritePages(pfns, pages);
            writer.EndCheckpoint((ulong)round);
            pagesSent += pfns.Length;
            domain.HarvestDirty(dirty);
            var next = DomainPages.Set(dirty, domain);
            bool stop = next.Length <= stopCopyPages || round + 1 >= maxRounds || (round > 0 && next.Length >= previous);
            progress?.Invoke(new MigrationProgress(round, pagesSent, writer.Statistics.BytesWritten, pfns.Length, next.Length, stop));
            if (stop) return (ulong)round + 1;
            previous = next.Length;
            pfns = next;
        }
    }
}
