using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>What a sender wrote: the bytes and, per epoch, the sender's memory and blobs at CHECKPOINT_END.</summary>
internal sealed record RecordedStream(
    byte[] Bytes,
    int Pages,
    byte[] Config,
    List<byte[]> Snapshots,
    List<EpochSummary> Summaries,
    List<(byte[] Vcpu, byte[]? Kernel)> Blobs,
    CheckpointWriterStatistics Statistics);

/// <summary>Drives a sender through epochs of random dirty sets, the way the Remus loop would.</summary>
internal static class StreamScenario
{
    public static RecordedStream Record(CheckpointWriterOptions options, int pages = 300, int epochs = 6, int seed = 1,
        System.IO.Stream? output = null, Action<CheckpointWriter, int>? betweenEpochs = null)
    {
        var f = new PageFactory(seed);
        var memory = new MemoryImage(pages);
        for (int i = 0; i < pages; i++) f.Any(memory.Page(i));
        var ms = new MemoryStream();
        var writer = new CheckpointWriter(output ?? ms, options);
        byte[] config = "{\"name\":\"counter\",\"memory\":128,\"note\":\"épreuve\"}"u8.ToArray();
        writer.WriteHeader(new StreamHeader(config));

        var snapshots = new List<byte[]>();
        var summaries = new List<EpochSummary>();
        var blobs = new List<(byte[], byte[]?)>();
        for (int e = 0; e < epochs; e++)
        {
            betweenEpochs?.Invoke(writer, e);
            if (e == 0)
            {
                var all = Enumerable.Range(0, pages).Select(i => (ulong)i).ToArray();
                writer.WritePages(all, memory);
            }
            else
            {
                int dirty = f.Rng.Next(0, pages / 2);
                foreach (int pfn in Enumerable.Range(0, pages).OrderBy(_ => f.Rng.Next()).Take(dirty))
                {
                    f.Mutate(memory.Page(pfn));
                    writer.WritePage((ulong)pfn, memory.Page(pfn));
                    if (f.Rng.Next(10) == 0) // the same page again in the same epoch: applied in order
                    {
                        f.Mutate(memory.Page(pfn));
                        writer.WritePage((ulong)pfn, memory.Page(pfn));
                    }
                }
            }
            byte[] vcpu = f.Blob(f.Rng.Next(1, 3000));
            writer.WriteVcpuState(vcpu);
            byte[]? kernel = f.Rng.Next(2) == 0 ? f.Blob(f.Rng.Next(0, 20000)) : null;
            if (kernel is not null) writer.WriteKernelState(kernel);
            summaries.Add(writer.EndCheckpoint((ulong)(10 + e * 3)));
            snapshots.Add(memory.Snapshot());
            blobs.Add((vcpu, kernel));
        }
        writer.WriteEnd();
        return new RecordedStream(ms.ToArray(), pages, config, snapshots, summaries, blobs, writer.Statistics);
    }

    /// <summary>Reads a recorded stream as a backup does; checks memory and blobs after every epoch.</summary>
    public static MemoryImage Replay(RecordedStream recorded, System.IO.Stream? input = null)
    {
        var reader = new CheckpointReader(input ?? new MemoryStream(recorded.Bytes, writable: false));
        var header = reader.ReadHeader();
        Assert.Equal(recorded.Config, header.DomainConfig.ToArray());
        var receiver = new MemoryImage(recorded.Pages);
        for (int i = 0; i < recorded.Snapshots.Count; i++)
        {
            using var epoch = reader.ReadEpoch();
            Assert.NotNull(epoch);
            Assert.Equal(recorded.Summaries[i].Epoch, epoch.Number);
            Assert.Equal(recorded.Summaries[i].Checksum, epoch.Checksum);
            Assert.Equal(recorded.Summaries[i].Bytes, epoch.StreamBytes);
            Assert.Equal(recorded.Summaries[i].Pages, epoch.PageCount);
            epoch.ApplyTo(receiver);
            Assert.True(recorded.Snapshots[i].AsSpan().SequenceEqual(receiver.Bytes), $"memory differs after epoch {epoch.Number}");
            var vcpu = Assert.Single(epoch.VcpuStates);
            Assert.Equal(0u, vcpu.VcpuId);
            Assert.Equal(recorded.Blobs[i].Vcpu, vcpu.State);
            Assert.Equal(recorded.Blobs[i].Kernel, epoch.KernelState);
        }
        Assert.Null(reader.ReadEpoch());
        Assert.True(reader.IsEnded);
        Assert.Null(reader.ReadEpoch());
        return receiver;
    }
}
