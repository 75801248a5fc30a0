using System.Diagnostics;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// The iterative pre-copy shared by live migration and Remus's initial synchronisation (the seed reuses its
/// migration code the same way): start the dirty log (and the volumes' copy), send every populated page (and every
/// volume) while the domain runs, then the pages (and paths) dirtied meanwhile, round after round, while the rounds
/// shrink.
/// <para>
/// <b>A round is cut into epochs of at most <c>epochPages</c> pages</b> (<see cref="DefaultEpochPages"/>), each closed
/// with CHECKPOINT_END as soon as it is written (and a large volume round likewise, <see cref="VolumeCopy"/>). A
/// receiver buffers an epoch whole before it verifies and applies it and reads nothing while it applies; with the first
/// round of a 4 GiB domain as one epoch that was gigabytes of buffer and tens of seconds of applying before the first
/// ack (issue 14: the primary's ack wait ran out while the backup was still applying). Cut, the receiver's memory for
/// one epoch is bounded, it applies and acks epoch by epoch while the next one travels, and progress is reported per
/// epoch.
/// </para>
/// <para>
/// The writer is taken under <c>gate</c> a slice of <see cref="SlicePages"/> pages (or one record) at a time, never a
/// whole epoch, and <c>writing</c> is called under it after every slice: a Remus primary's hook writes a HEARTBEAT
/// there when no byte went out for a while (reading the pages is what takes the time), and its heartbeat thread can
/// take the gate between slices and between epochs.
/// </para>
/// </summary>
internal static class PreCopy
{
    /// <summary>
    /// Default most pages per pre-copy epoch: 16384 pages, 64 MiB of page content (as <see cref="VolumeCopy.DefaultEpochBytes"/>).
    /// Small enough that a receiver's buffer for one epoch stays bounded (≤ 64 MiB and the records' framing) and that
    /// verifying and applying one takes it well under a second even on a loaded 2-core machine (~20 µs a page there,
    /// 0.3 s an epoch), far below any ack bound; large enough that an epoch's own cost (a CHECKPOINT_END, a flush, an
    /// ack: ~100 bytes and a round trip, overlapped with the next epoch's writing) is lost in the noise.
    /// </summary>
    public const int DefaultEpochPages = 16384;

    /// <summary>Pages written per hold of the writer's gate: an eighth of a PAGE_DATA record at the default 512 pages, so that the hook runs many times per record.</summary>
    public const int SlicePages = 64;

    /// <summary>
    /// Waits until the receiver has applied the pre-copy epochs <paramref name="from"/> .. <paramref name="to"/> − 1, so
    /// that the pause that follows does not also wait for a backlog of bytes still in flight (it would all count as
    /// downtime). <paramref name="timeout"/> bounds each ack after the previous one (or after the call), not the
    /// whole: epochs are bounded (<see cref="DefaultEpochPages"/>), so the wait grows with the amount still to apply and
    /// only a receiver that applies nothing for <paramref name="timeout"/> is given up on.
    /// </summary>
    public static void AwaitAcks(AckPump acks, ulong to, TimeSpan timeout, ulong from = 0)
    {
        for (ulong e = from; e < to; e++)
        {
            var ack = acks.Next(timeout, $"the receiver's acknowledgement of pre-copy epoch {e} (of {from}..{to - 1})")
                      ?? throw new IOException("the receiver closed the channel during the pre-copy");
            if (ack.Epoch != e) throw new CheckpointStreamException(CheckpointStreamError.Protocol, $"the receiver acknowledged epoch {ack.Epoch}, expected {e}");
        }
    }

    /// <summary>
    /// Runs the rounds. On return <paramref name="dirty"/> holds the pages dirtied since the last round (not sent);
    /// the caller pauses, harvests once more into it and sends the rest with the state (and, with volumes, the last
    /// copy round, paused). Returns the next epoch number. The writer is taken under <paramref name="gate"/> one
    /// slice of pages (or one record) at a time; <paramref name="writing"/> is called under it after each slice.
    /// <paramref name="whilePaused"/> runs once in the pause that starts the dirty log.
    /// <paramref name="progress"/> is called (outside the gate) after every epoch closed in the middle of a round
    /// (<see cref="MigrationProgress.Partial"/>) and once at the end of every round.
    /// </summary>
    public static ulong Run(ICheckpointable domain, CheckpointWriter writer, ulong[] dirty, int maxRounds, int stopCopyPages,
        Action<MigrationProgress>? progress, ref long pagesSent, VolumeCopy? volumes = null, object? gate = null,
        int epochPages = DefaultEpochPages, Action? writing = null, Action? whilePaused = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(epochPages, 1);
        gate ??= new object();
        var clock = Stopwatch.StartNew();
        bool wasPaused = domain.State == DomainState.Paused;
        domain.Pause();
        try
        {
            domain.StartDirtyLog();
            domain.MarkPopulatedPages(dirty);
            volumes?.Replica.BeginCopy(); // from here every path the program changes is remembered
            whilePaused?.Invoke();
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
            // Every epoch of the round but its last is closed as soon as it is written; the last stays open for the
            // volumes' round (which may split it further) and is closed after it.
            int done = 0;
            while (true)
            {
                int n = Math.Min(epochPages, pfns.Length - done);
                WriteSliced(writer, gate, pfns.AsSpan(done, n), pages, writing);
                done += n;
                pagesSent += n;
                if (done == pfns.Length) break;
                lock (gate) writer.EndCheckpoint(epoch);
                ReportPartial(progress, writer, gate, round, epoch, pagesSent, pfns.Length, done, clock);
                epoch++;
            }
            long volumeBytes = 0;
            if (volumes != null)
            {
                volumes.NextEpoch = epoch;
                volumeBytes = volumes.Round();
                epoch = volumes.NextEpoch;
            }
            lock (gate) writer.EndCheckpoint(epoch);
            ulong closed = epoch;
            epoch++;
            domain.HarvestDirty(dirty);
            var next = DomainPages.Set(dirty, domain);
            bool memoryDone = next.Length <= stopCopyPages || (round > 0 && next.Length >= previous);
            bool volumesDone = volumes == null || volumeBytes <= VolumeCopy.StopCopyBytes || (round > 0 && volumeBytes >= previousVolume);
            bool stop = (memoryDone && volumesDone) || round + 1 >= maxRounds;
            BytesWritten(writer, gate, out long bytes);
            progress?.Invoke(new MigrationProgress(round, pagesSent, bytes, pfns.Length, next.Length, stop)
            {
                Epoch = closed, RoundPagesSent = pfns.Length, Elapsed = clock.Elapsed,
            });
            if (stop) return epoch;
            previous = next.Length;
            previousVolume = volumeBytes;
            pfns = next;
        }
    }

    /// <summary>Writes <paramref name="pfns"/> a slice at a time under the gate, calling <paramref name="writing"/> after each.</summary>
    internal static void WriteSliced(CheckpointWriter writer, object gate, ReadOnlySpan<ulong> pfns, IPageSource pages, Action? writing)
    {
        for (int at = 0; at < pfns.Length; at += SlicePages)
        {
            var slice = pfns.Slice(at, Math.Min(SlicePages, pfns.Length - at));
            lock (gate)
            {
                writer.WritePages(slice, pages);
                writing?.Invoke();
            }
        }
    }

    private static void ReportPartial(Action<MigrationProgress>? progress, CheckpointWriter writer, object gate, int round, ulong epoch,
        long pagesSent, int roundPages, int done, Stopwatch clock)
    {
        if (progress == null) return;
        BytesWritten(writer, gate, out long bytes);
        progress(new MigrationProgress(round, pagesSent, bytes, roundPages, 0, false)
        {
            Epoch = epoch, RoundPagesSent = done, Partial = true, Elapsed = clock.Elapsed,
        });
    }

    private static void BytesWritten(CheckpointWriter writer, object gate, out long bytes)
    {
        lock (gate) bytes = writer.Statistics.BytesWritten;
    }
}
