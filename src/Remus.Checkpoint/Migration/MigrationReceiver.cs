using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Migration;

/// <summary>
/// Live migration, target side: builds the domain from the stream as it arrives (each epoch applied only once it is
/// whole and its checksum verified; a round comes as one epoch or several, at most the sender's
/// <see cref="MigrationOptions.EpochPages"/> pages each, so what is buffered at once stays bounded), acknowledges
/// every epoch once applied (the final one once the domain is complete, paused), and takes
/// it over at the sender's END. <see cref="Receive"/> returns the domain, still paused: the caller renames it,
/// resumes it, then calls <see cref="ConfirmRunning"/>. Any error disposes the domain: nothing is left behind.
/// Volumes (issue 10) are built in their staging directories, each epoch's VOLUME_OPS applied after its pages and
/// before its state; they become the domain's volumes only when the caller calls
/// <see cref="Remus.Sandbox.Volumes.IVolumeReplica.Commit"/> after <see cref="ConfirmRunning"/> (the source holds them
/// until it has let the domain go).
/// <paramref name="readerOptions"/> bounds what the stream may make the reader buffer (issue 13: a receiver sets
/// <see cref="CheckpointReaderOptions.MaxVcpuStates"/> to its policy's vCPU limit); null: the defaults.
/// </summary>
public sealed class MigrationReceiver(System.IO.Stream forward, System.IO.Stream back, CheckpointReaderOptions? readerOptions = null)
{
    private readonly AckWriter _acks = new(back);

    /// <summary>Reads the whole migration. <paramref name="build"/> makes the incoming domain from the stream's config.</summary>
    public T Receive<T>(Func<ReadOnlyMemory<byte>, T> build) where T : ICheckpointable
    {
        var reader = new CheckpointReader(forward, readerOptions);
        var header = reader.ReadHeader();
        var domain = build(header.DomainConfig);
        try
        {
            var pages = new DomainPages(domain);
            bool complete = false;
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch)
                {
                    if (PhaseTrace.On) PhaseTrace.Mark($"R epoch {epoch.Number} read ({epoch.PageCount} pages)");
                    if (complete) throw new CheckpointStreamException(CheckpointStreamError.Protocol, "an epoch after the final one");
                    epoch.ValidateVolumes(domain.Volumes); // judged before anything is touched
                    epoch.ApplyTo(pages);
                    PhaseTrace.Mark("R applied");
                    epoch.ApplyVolumes(domain.Volumes);
                    if (epoch.KernelState != null && epoch.VcpuStates.Count > 0)
                    {
                        domain.LoadState(epoch.VcpuStatesInOrder(), epoch.KernelState);
                        complete = true;
                        PhaseTrace.Mark("R state loaded");
                    }
                    else domain.PrepareLoad(); // before the ack: the sender pauses only once the last round's is in
                    _acks.WriteAck(epoch); // every round: the sender pauses only once we caught up
                    PhaseTrace.Mark("R acked");
                }
            }
            if (!complete) throw new CheckpointStreamException(CheckpointStreamError.Protocol, "the sender ended the migration before sending the domain's state");
            return domain;
        }
        catch
        {
            domain.Dispose();
            throw;
        }
    }

    /// <summary>Tells the sender the domain runs here now (END on the back channel).</summary>
    public void ConfirmRunning() { PhaseTrace.Mark("R confirm"); _acks.WriteEnd(); }
}
