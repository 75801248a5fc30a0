using System.Diagnostics;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint;

/// <summary>What a save wrote.</summary>
public sealed record SaveResult(long Pages, long Bytes, TimeSpan Elapsed);

/// <summary>
/// Save and restore: a domain's whole state as one checkpoint stream (header, one epoch with every page that holds
/// data and the vCPU and kernel state, END). The same stream format as migration and Remus. A domain with volumes
/// (issue 10) also carries each of them whole as VOLUME_OPS, after the pages; epochs are closed every
/// <see cref="VolumeCopy.DefaultEpochBytes"/> of them and the last one holds the state. A restored domain's volumes
/// are in their staging directories until the caller calls <see cref="Remus.Sandbox.Volumes.IVolumeReplica.Commit"/>.
/// </summary>
public static class DomainSave
{
    /// <summary>Writes a paused domain to <paramref name="output"/>. The caller pauses it and decides what follows.</summary>
    public static SaveResult Save(ICheckpointable domain, System.IO.Stream output, ReadOnlyMemory<byte> config, bool compress = true)
    {
        if (domain.State != DomainState.Paused) throw new InvalidOperationException("pause the domain before saving it");
        var sw = Stopwatch.StartNew();
        var writer = new CheckpointWriter(output, compress ? CheckpointWriterOptions.Default : CheckpointWriterOptions.Uncompressed);
        writer.WriteHeader(new StreamHeader(config));
        var bitmap = new ulong[domain.DirtyBitmapWords];
        domain.MarkPopulatedPages(bitmap);
        var pfns = DomainPages.Set(bitmap, domain);
        writer.WritePages(pfns, new DomainPages(domain));
        ulong epoch = 0;
        if (domain.Volumes is { } replica)
        {
            // One paused round: every volume whole, after the pages; epochs split so a restore never buffers a volume.
            var volumes = new VolumeCopy(replica, writer, new object());
            try
            {
                replica.BeginCopy();
                volumes.Round();
                epoch = volumes.NextEpoch;
            }
            finally
            {
                replica.StopTracking();
            }
        }
        var vcpus = domain.CaptureVcpuStates();
        for (int i = 0; i < vcpus.Count; i++) writer.WriteVcpuState((uint)i, vcpus[i]);
        writer.WriteKernelState(domain.CaptureKernelState());
        writer.EndCheckpoint(epoch);
        writer.WriteEnd();
        output.Flush();
        return new SaveResult(pfns.Length, writer.Statistics.BytesWritten, sw.Elapsed);
    }

    /// <summary>
    /// Reads a saved domain. <paramref name="build"/> turns the configuration in the stream into the domain to fill
    /// (an incoming domain: <see cref="SandboxDomain.CreateIncoming"/>). The result is paused, ready to run; on any
    /// error nothing is left (the domain is disposed) and a clear exception says why.
    /// </summary>
    public static T Restore<T>(System.IO.Stream input, Func<ReadOnlyMemory<byte>, T> build) where T : ICheckpointable
    {
        var reader = new CheckpointReader(input);
        var header = reader.ReadHeader();
        var domain = build(header.DomainConfig);
        try
        {
            bool haveState = false;
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch)
                {
                    epoch.ValidateVolumes(domain.Volumes); // judged before anything is touched
                    epoch.ApplyTo(new DomainPages(domain));
                    epoch.ApplyVolumes(domain.Volumes);
                    if (epoch.KernelState != null && epoch.VcpuStates.Count > 0)
                    {
                        domain.LoadState(epoch.VcpuStatesInOrder(), epoch.KernelState);
                        haveState = true;
                    }
                }
            }
            if (!haveState) throw new CheckpointStreamException(CheckpointStreamError.Protocol, "the stream ended without the domain's vCPU and kernel state");
            return domain;
        }
        catch
        {
            domain.Dispose();
            throw;
        }
    }
}
