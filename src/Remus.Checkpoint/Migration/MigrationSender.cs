using System.Diagnostics;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// Live migration, source side (xc_domain_save's loop): start the dirty log; send every page while the domain runs;
/// send the pages dirtied meanwhile, round after round, while the rounds shrink; then pause, send the last dirty
/// pages with the vCPU and kernel state, and hand over once the target has the domain (its ACK), which it confirms
/// after it resumed it (END on the back channel). Each round is one or more epochs of the stream (at most
/// <see cref="MigrationOptions.EpochPages"/> pages each), checksummed.
///
/// On any failure before the hand-over the domain is resumed here and an exception says why; the target discards
/// what it had. After END went out the outcome is the target's: if its confirmation does not come, the domain is
/// left paused here (never running twice) and the error says so.
/// </summary>
public sealed class MigrationSender(ICheckpointable domain, System.IO.Stream forward, System.IO.Stream back, MigrationOptions options)
{
    public event Action<MigrationProgress>? Progress;

    /// <summary>Set when END went out: from then on the domain must not resume here.</summary>
    public bool HandedOver { get; private set; }

    public MigrationResult Migrate(ReadOnlyMemory<byte> config)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.EpochPages, 1);
        var total = Stopwatch.StartNew();
        var writer = new CheckpointWriter(forward, options.Compress ? CheckpointWriterOptions.Default : CheckpointWriterOptions.Uncompressed);
        using var acks = new AckPump(back);
        var pages = new DomainPages(domain);
        var bitmap = new ulong[domain.DirtyBitmapWords];
        long pagesSent = 0;
        try
        {
            return Migrate(config, total, writer, acks, pages, bitmap, ref pagesSent);
        }
        finally
        {
            domain.Volumes?.StopTracking(); // handed over or resumed here: either way nothing more to remember
        }
    }

    private MigrationResult Migrate(ReadOnlyMemory<byte> config, Stopwatch total, CheckpointWriter writer, AckPump acks, DomainPages pages,
        ulong[] bitmap, ref long pagesSent)
    {
        bool wasPaused = domain.State == DomainState.Paused;
        bool paused = false;
        var volumes = domain.Volumes is { } replica ? new VolumeCopy(replica, writer, new object()) : null;
        try
        {
            writer.WriteHeader(new StreamHeader(config));
            int rounds = 0; // pre-copy rounds done (a round is one epoch or several: epoch numbers are not round numbers)
            ulong epoch = PreCopy.Run(domain, writer, bitmap, options.MaxRounds, options.StopCopyPages, p =>
            {
                if (!p.Partial) rounds = p.Round + 1;
                Progress?.Invoke(p);
            }, ref pagesSent, volumes, epochPages: options.EpochPages, whilePaused: WarmCapture);
            PreCopy.AwaitAcks(acks, epoch, options.AckTimeout);
            ulong[] pfns;

            // Stop and copy: the last pages, the volumes' last round (paused; the epoch split if it is large), the state.
            // The pages too go as epochs of at most EpochPages (a round cut short by MaxRounds can be large): the
            // target's buffer stays bounded and it applies one while the next travels.
            PhaseTrace.Reset();
            PhaseTrace.Mark("S pause");
            var downtime = Stopwatch.StartNew();
            domain.Pause();
            PhaseTrace.Mark("S paused");
            paused = true;
            ulong firstFinal = epoch;
            domain.HarvestDirty(bitmap);
            pfns = DomainPages.Set(bitmap, domain);
            if (PhaseTrace.On) PhaseTrace.Mark($"S harvested and listed {pfns.Length} pages");
            int done = 0;
            for (; pfns.Length - done > options.EpochPages; done += options.EpochPages)
            {
                writer.WritePages(pfns.AsSpan(done, options.EpochPages), pages);
                writer.EndCheckpoint(epoch++);
            }
            writer.WritePages(pfns.AsSpan(done), pages);
            if (volumes != null)
            {
                volumes.NextEpoch = epoch;
                volumes.Round();
                epoch = volumes.NextEpoch;
            }
            PhaseTrace.Mark("S pages written");
            var (vcpus, kernel) = domain.CaptureStates(); // one visit to the vCPU thread when it is the only one
            PhaseTrace.Mark("S state captured");
            for (int i = 0; i < vcpus.Count; i++) writer.WriteVcpuState((uint)i, vcpus[i]);
            writer.WriteKernelState(kernel);
            PhaseTrace.Mark("S state written");
            var last = writer.EndCheckpoint(epoch);
            PhaseTrace.Mark("S end checkpoint");
            pagesSent += pfns.Length;
            Progress?.Invoke(new MigrationProgress(rounds, pagesSent, writer.Statistics.BytesWritten, pfns.Length, 0, true)
            {
                Epoch = last.Epoch, RoundPagesSent = pfns.Length, Elapsed = total.Elapsed,
            });

            PreCopy.AwaitAcks(acks, epoch, options.AckTimeout, firstFinal); // the last round's own epochs, if it was split
            var ack = acks.Next(options.AckTimeout, "the target's acknowledgement");
            if (ack == null) throw new MigrationException("the target closed the migration without taking the domain");
            PhaseTrace.Mark("S acked");
            if (!ack.Value.Confirms(last))
                throw new MigrationException($"the target acknowledged epoch {ack.Value.Epoch}, expected {last.Epoch}");
            writer.WriteEnd();
            forward.Flush();
            HandedOver = true;
            PhaseTrace.Mark("S END written");
            var confirm = acks.Next(options.AckTimeout, "the target's confirmation that the domain runs");
            PhaseTrace.Mark("S confirmed");
            var dt = downtime.Elapsed;
            PhaseTrace.Dump();
            if (confirm != null) throw new MigrationException("the target sent an unexpected acknowledgement after the hand-over");
            return new MigrationResult(rounds + 1, pagesSent, writer.Statistics.BytesWritten, total.Elapsed, dt);
        }
        catch (Exception e) when (!HandedOver)
        {
            if (paused && !wasPaused) domain.Unpause();
            throw e as MigrationException ?? new MigrationException(Describe(e), e);
        }
        catch (Exception e)
        {
            throw new MigrationException($"the domain was handed over but the target did not confirm it runs ({Describe(e)}); it is left paused here", e);
        }
    }

    /// <summary>
    /// Captures the vCPU and kernel state once, unused, in the pause that starts the dirty log. The first capture in a
    /// process runs cold code (JIT, buffers sized from nothing): 20-95 ms of the stop-and-copy of a CLI migration
    /// (64 MiB to 4 GiB domains, issue 14), all of it downtime; here it is paid in a pause the copy takes anyway.
    /// </summary>
    private void WarmCapture() => domain.CaptureStates();

    private static string Describe(Exception e) => e switch
    {
        IOException io => $"the migration channel broke: {io.Message}",
        CheckpointStreamException cs => $"the target's answer is invalid: {cs.Message}",
        TimeoutException t => t.Message,
        _ => e.Message,
    };

}

/// <summary>A migration that did not happen (or whose outcome is uncertain), with one clear sentence.</summary>
public sealed class MigrationException(string message, Exception? inner = null) : Exception(message, inner);
