using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>The records of the Remus protocol added in version 2: HELLO, RELEASE, RELEASED, TAKEOVER and EXIT.</summary>
public class ProtocolRecordTests
{
    [Fact]
    public void The_back_channel_carries_hello_acks_and_a_takeover_or_released_last()
    {
        foreach (bool takeover in new[] { true, false })
        {
            var ms = new MemoryStream();
            var w = new AckWriter(ms);
            w.WriteHello(TimeSpan.FromMilliseconds(1500));
            w.WriteAck(3, 0xabc);
            w.WriteHeartbeat();
            if (takeover) w.WriteTakeover(); else w.WriteReleased();
            Assert.Throws<InvalidOperationException>(() => w.WriteAck(4, 1)); // the channel has ended

            var r = new AckReader(new MemoryStream(ms.ToArray()));
            var hello = r.ReadNext();
            Assert.Equal(BackRecordKind.Hello, hello.Kind);
            Assert.Equal(StreamFormat.Version, hello.Version);
            Assert.Equal(TimeSpan.FromMilliseconds(1500), hello.Timeout);
            Assert.Equal(new Ack(3, 0xabc), r.ReadNext().Ack);
            Assert.Equal(takeover ? BackRecordKind.Takeover : BackRecordKind.Released, r.ReadNext().Kind);
            Assert.Equal(BackRecordKind.End, r.ReadNext().Kind);
        }
    }

    [Fact]
    public void Hello_is_only_the_first_record_and_a_migration_reader_refuses_the_remus_records()
    {
        var ms = new MemoryStream();
        var w = new AckWriter(ms);
        w.WriteAck(0, 1);
        w.WriteHello(TimeSpan.FromSeconds(1));
        var r = new AckReader(new MemoryStream(ms.ToArray()));
        r.ReadNext();
        var e = Assert.Throws<CheckpointStreamException>(() => r.ReadNext());
        Assert.Contains("HELLO is only the first record", e.Message);

        ms = new MemoryStream();
        new AckWriter(ms).WriteTakeover();
        e = Assert.Throws<CheckpointStreamException>(() => new AckReader(new MemoryStream(ms.ToArray())).ReadAck());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
    }

    [Fact]
    public void Release_ends_the_stream_with_its_reason_and_only_between_epochs()
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = 2 });
        w.WritePage(1, new byte[4096]);
        Assert.Throws<InvalidOperationException>(() => w.WriteRelease("x"));
        w.EndCheckpoint(0);
        w.WriteHeartbeat();
        w.WriteRelease("no acknowledgement of epoch 7 within 900 ms");
        Assert.False(w.IsOpen);

        var r = new CheckpointReader(new MemoryStream(ms.ToArray()));
        r.ReadHeader();
        using (var e = r.ReadEpoch()) Assert.NotNull(e);
        Assert.Null(r.ReadEpoch());
        Assert.True(r.IsReleased);
        Assert.Equal("no acknowledgement of epoch 7 within 900 ms", r.ReleaseReason);
    }

    [Fact]
    public void An_exit_epoch_carries_the_status_and_the_last_output_checksummed_and_alone()
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = 2 });
        w.WriteExit(3, "last words"u8);
        var sent = w.EndCheckpoint(5);
        w.WriteEnd();

        var r = new CheckpointReader(new MemoryStream(ms.ToArray()));
        r.ReadHeader();
        using (var e = r.ReadEpoch()!)
        {
            Assert.Equal(5UL, e.Number);
            Assert.Equal(sent.Checksum, e.Checksum);
            Assert.Equal(3, e.Exit!.Status);
            Assert.Equal("last words"u8.ToArray(), e.Exit.Output);
            Assert.Equal(0, e.PageCount);
        }
        Assert.Null(r.ReadEpoch());
        Assert.False(r.IsReleased);

        // EXIT with other records in its epoch is refused; a damaged EXIT is a checksum mismatch.
        w = new CheckpointWriter(ms = new MemoryStream());
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = 2 });
        w.WritePage(1, new byte[4096]);
        Assert.Throws<InvalidOperationException>(() => w.WriteExit(0, default));
        var bytes = new RawStreamBuilder(RawStreamBuilder.Header(version: 2))
            .Record((uint)RecordType.Exit, [0, 0, 0, 0, 0, 0, 0, 0, 0x41])
            .Record((uint)RecordType.KernelState, [1])
            .CheckpointEnd(0).ToArray();
        r = new CheckpointReader(new MemoryStream(bytes));
        r.ReadHeader();
        var error = Assert.Throws<CheckpointStreamException>(() => r.ReadEpoch());
        Assert.Contains("EXIT with other records", error.Message);
    }

    [Fact]
    public void A_version_1_stream_knows_no_release_or_exit()
    {
        var w = new CheckpointWriter(new MemoryStream());
        w.WriteHeader(new StreamHeader("{}"u8.ToArray())); // version 1: what a save or a migration writes
        Assert.Throws<InvalidOperationException>(() => w.WriteRelease());
        Assert.Throws<InvalidOperationException>(() => w.WriteExit(0, default));

        var bytes = new RawStreamBuilder(RawStreamBuilder.Header(version: 1)).Record((uint)RecordType.Release, []).ToArray();
        var r = new CheckpointReader(new MemoryStream(bytes));
        Assert.Equal(1u, r.ReadHeader().Version);
        var e = Assert.Throws<CheckpointStreamException>(() => r.ReadEpoch());
        Assert.Equal(CheckpointStreamError.UnknownRecord, e.Error);
    }
}
