using Remus.Checkpoint.Stream;
using Remus.Sandbox.Volumes;
using Remus.Tests.Checkpoint.Volumes;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// Record type 12, VOLUME_OPS (docs/stream-format.md §4.12): an opaque, bounded body carried in its epoch, covered by
/// its checksum, handed to the replica only through <see cref="Epoch.ApplyVolumes"/> — all judged first, then applied in order.
/// </summary>
public class VolumeOpsRecordTests
{
    private static byte[] Write(Action<CheckpointWriter> body, uint version = 1)
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = version });
        body(w);
        w.WriteEnd();
        return ms.ToArray();
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(2u)]
    public void Volume_batches_travel_in_their_epoch_in_order_and_are_counted(uint version)
    {
        var page = new byte[4096];
        page[9] = 1;
        byte[] a = FakeVolumeReplica.Body(0, 16), b = FakeVolumeReplica.Body(1, 5000), c = FakeVolumeReplica.Body(2, IVolumeReplica.MaxBatchBytes);
        CheckpointWriterStatistics stats = default;
        byte[] bytes = Write(w =>
        {
            w.WritePage(600, page);
            w.WriteVolumeOps(a);
            w.WriteVolumeOps(b);
            w.WriteKernelState([7]);
            w.EndCheckpoint(0);
            w.WriteVolumeOps(c);
            w.EndCheckpoint(1);
            stats = w.Statistics;
        }, version);
        Assert.Equal(3, stats.VolumeOpsRecords);
        int frame = version == 2 ? 16 : 8;
        Assert.Equal(3L * frame + 16 + 5000 + IVolumeReplica.MaxBatchBytes, stats.VolumeOpsBytes);

        var reader = StreamTestExtensions.OpenReader(bytes);
        var replica = new FakeVolumeReplica();
        using (var e0 = reader.ReadEpoch()!)
        {
            Assert.Equal(2, e0.VolumeBatchCount);
            Assert.Equal(a, e0.VolumeBatches[0].ToArray());
            Assert.Equal(b, e0.VolumeBatches[1].ToArray());
            Assert.Equal(1, e0.PageCount);
            e0.ApplyVolumes(replica);
            Assert.Throws<InvalidOperationException>(() => e0.ApplyVolumes(replica)); // at most once
        }
        using (var e1 = reader.ReadEpoch()!)
        {
            Assert.Equal(IVolumeReplica.MaxBatchBytes, e1.VolumeBytes);
            e1.ApplyVolumes(replica);
        }
        Assert.Null(reader.ReadEpoch());
        Assert.Equal([0u, 1, 2], replica.Applied);
        Assert.Equal(["Validate 0", "Validate 1", "Apply 0", "Apply 1", "Validate 2", "Apply 2"], replica.Snapshot());
    }

    [Fact]
    public void Every_batch_of_an_epoch_is_judged_before_any_is_applied()
    {
        var bad = FakeVolumeReplica.Body(1, 64);
        bad[0] = (byte)'X'; // not the replica's framing
        byte[] bytes = Write(w =>
        {
            w.WriteVolumeOps(FakeVolumeReplica.Body(0, 64));
            w.WriteVolumeOps(bad);
            w.EndCheckpoint(0);
        });
        var replica = new FakeVolumeReplica();
        using var epoch = StreamTestExtensions.OpenReader(bytes).ReadEpoch()!;
        Assert.Throws<InvalidDataException>(() => epoch.ApplyVolumes(replica));
        Assert.Empty(replica.Applied);
        // A domain without volumes refuses an epoch that carries some, before anything else.
        var e = Assert.Throws<InvalidDataException>(() => epoch.ValidateVolumes(null));
        Assert.Contains("no volumes", e.Message);
    }

    [Fact]
    public void The_writer_keeps_bodies_within_the_bounds()
    {
        var w = new CheckpointWriter(new MemoryStream());
        Assert.Throws<InvalidOperationException>(() => w.WriteVolumeOps(new byte[8]));
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        Assert.Throws<ArgumentException>(() => w.WriteVolumeOps(new byte[7]));
        Assert.Throws<ArgumentException>(() => w.WriteVolumeOps(new byte[IVolumeReplica.MaxBatchBytes + 1]));
        Assert.Equal(StreamFormat.MaxVolumeOpsLength, StreamFormat.MaxBodyLength(RecordType.VolumeOps));
        Assert.Equal("VOLUME_OPS", StreamFormat.Name(RecordType.VolumeOps));
    }

    [Theory]
    [InlineData(7u)]
    [InlineData((uint)IVolumeReplica.MaxBatchBytes + 1)]
    public void A_reader_refuses_a_length_out_of_bounds_before_reading_the_body(uint length)
    {
        byte[] bytes = new RawStreamBuilder().Record(12, new byte[8], length).CheckpointEnd(0).ToArray();
        var reader = StreamTestExtensions.OpenReader(bytes);
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(CheckpointStreamError.InvalidRecord, e.Error);
        Assert.Contains("VOLUME_OPS", e.Message);
    }

    [Fact]
    public void A_damaged_volume_batch_is_a_checksum_mismatch_and_nothing_is_handed_over()
    {
        byte[] body = FakeVolumeReplica.Body(0, 100);
        byte[] bytes = Write(w =>
        {
            w.WriteVolumeOps(body);
            w.EndCheckpoint(0);
        });
        int at = bytes.AsSpan().IndexOf(body) + 50;
        bytes[at] ^= 0x01;
        var e = Assert.Throws<CheckpointStreamException>(() => StreamTestExtensions.OpenReader(bytes).ReadEpoch());
        Assert.Equal(CheckpointStreamError.ChecksumMismatch, e.Error);
        // Truncated inside the body: no epoch either.
        byte[] cut = Write(w => { w.WriteVolumeOps(body); w.EndCheckpoint(0); })[..(at + 1)];
        var t = Assert.Throws<CheckpointStreamException>(() => StreamTestExtensions.OpenReader(cut).ReadEpoch());
        Assert.Equal(CheckpointStreamError.Truncated, t.Error);
    }

    [Fact]
    public void An_exit_epoch_may_carry_the_programs_last_volume_batches_and_nothing_else_besides()
    {
        byte[] bytes = Write(w =>
        {
            w.WriteVolumeOps(FakeVolumeReplica.Body(4, 32));
            w.WriteExit(3, "bye"u8);
            w.EndCheckpoint(9);
        }, version: 2);
        using (var epoch = StreamTestExtensions.OpenReader(bytes).ReadEpoch()!)
        {
            Assert.Equal(3, epoch.Exit!.Status);
            Assert.Equal(1, epoch.VolumeBatchCount);
        }

        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = 2 });
        w.WriteVolumeOps(FakeVolumeReplica.Body(4, 32));
        w.WritePage(600, new byte[4096]);
        Assert.Throws<InvalidOperationException>(() => w.WriteExit(0, default));

        var mixed = new RawStreamBuilder(RawStreamBuilder.Header(version: 2))
            .Record(12, FakeVolumeReplica.Body(1, 16))
            .Record((uint)RecordType.Exit, [0, 0, 0, 0, 0, 0, 0, 0])
            .Record((uint)RecordType.KernelState, [1])
            .CheckpointEnd(0).ToArray();
        var e = Assert.Throws<CheckpointStreamException>(() => StreamTestExtensions.OpenReader(mixed).ReadEpoch());
        Assert.Contains("EXIT with other records", e.Message);
    }
}
