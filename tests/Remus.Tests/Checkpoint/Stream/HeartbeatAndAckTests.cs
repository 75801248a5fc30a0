using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

public class HeartbeatAndAckTests
{
    [Fact]
    public void Heartbeats_between_and_inside_epochs_are_reported_and_checksummed()
    {
        var t0 = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 64, epochs: 4, seed: 31,
            betweenEpochs: (w, e) => w.WriteHeartbeat(t0.AddMilliseconds(e)));
        // Also one inside an epoch and two after the last one, before END.
        var ms = new MemoryStream();
        var writer = new CheckpointWriter(ms);
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        writer.WritePage(1, new byte[4096]);
        writer.WriteHeartbeat(t0);
        writer.WritePage(2, new byte[4096]);
        writer.EndCheckpoint(1);
        writer.WriteHeartbeat(t0.AddSeconds(1));
        writer.WriteHeartbeat(t0.AddSeconds(2));
        writer.WriteEnd();

        var seen = new List<DateTimeOffset>();
        var reader = new CheckpointReader(new MemoryStream(ms.ToArray()));
        reader.HeartbeatReceived += seen.Add;
        reader.ReadHeader();
        using (var epoch = reader.ReadEpoch()!) Assert.Equal(2, epoch.PageCount);
        Assert.Equal(new[] { t0 }, seen);
        Assert.Null(reader.ReadEpoch());
        Assert.Equal(new[] { t0, t0.AddSeconds(1), t0.AddSeconds(2) }, seen);
        Assert.Equal(3, reader.HeartbeatsReceived);
        Assert.Equal(t0.AddSeconds(2), reader.LastHeartbeat);

        StreamScenario.Replay(recorded); // heartbeats at epoch starts do not disturb the epochs
        var r2 = StreamTestExtensions.OpenReader(recorded.Bytes);
        var times = new List<DateTimeOffset>();
        r2.HeartbeatReceived += times.Add;
        while (r2.ReadEpoch() is { } e) e.Dispose();
        Assert.Equal(Enumerable.Range(0, 4).Select(i => t0.AddMilliseconds(i)), times);
    }

    [Fact]
    public void A_heartbeat_is_surfaced_before_its_epoch_completes()
    {
        // The backup's watchdog must see liveness during a long epoch, not only at its end.
        var bytes = new RawStreamBuilder().Heartbeat(1_000_000_000).Record(RecordType.KernelState, [1]).ToArray();
        var reader = StreamTestExtensions.OpenReader(bytes);
        int beats = 0;
        reader.HeartbeatReceived += _ => beats++;
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(CheckpointStreamError.Truncated, e.Error);
        Assert.Equal(1, beats);
    }

    [Fact]
    public void Acks_carry_epoch_and_checksum_and_confirm_what_was_sent()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 32, epochs: 3, seed: 32);
        var back = new MemoryStream();
        var acks = new AckWriter(back);
        var reader = StreamTestExtensions.OpenReader(recorded.Bytes);
        acks.WriteHeartbeat(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        while (reader.ReadEpoch() is { } epoch)
            using (epoch) acks.WriteAck(epoch);
        acks.WriteEnd();
        Assert.Throws<InvalidOperationException>(() => acks.WriteHeartbeat());
        Assert.Equal(3 * 24 + 16 + 8, back.Length);

        back.Position = 0;
        var ackReader = new AckReader(back);
        int beats = 0;
        ackReader.HeartbeatReceived += _ => beats++;
        foreach (var sent in recorded.Summaries)
        {
            var ack = ackReader.ReadAck();
            Assert.NotNull(ack);
            Assert.True(ack.Value.Confirms(sent));
            Assert.False(ack.Value.Confirms(sent with { Checksum = sent.Checksum + 1 }));
        }
        Assert.Equal(1, beats);
        Assert.Null(ackReader.ReadAck());
        Assert.Null(ackReader.ReadAck());
        Assert.Equal(recorded.Summaries[^1].Epoch, ackReader.LastEpoch);
    }

    [Fact]
    public void The_back_channel_refuses_every_record_of_the_forward_stream()
    {
        var e = Assert.Throws<CheckpointStreamException>(() =>
            new AckReader(new MemoryStream(new RawStreamBuilder([]).Record(RecordType.PageData, new byte[16]).ToArray())).ReadAck());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
        Assert.Equal("unexpected record PAGE_DATA on the back channel (only HELLO, ACK, HEARTBEAT, RELEASED, TAKEOVER and END belong there)", e.Message);

        e = Assert.Throws<CheckpointStreamException>(() =>
            new AckReader(new MemoryStream(new RawStreamBuilder([]).Record(0x99, []).ToArray())).ReadAck());
        Assert.Equal("unknown record type 0x99", e.Message);

        e = Assert.Throws<CheckpointStreamException>(() => new AckReader(new MemoryStream(new byte[] { 6, 0, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4 })).ReadAck());
        Assert.Equal("truncated stream: expected 12 more bytes of record ACK", e.Message);
        Assert.Equal(CheckpointStreamError.Truncated, e.Error);

        var back = new MemoryStream();
        var w = new AckWriter(back);
        w.WriteAck(5, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => w.WriteAck(5, 1));
        var bytes = back.ToArray().Concat(back.ToArray()).ToArray(); // the same ACK twice
        var r = new AckReader(new MemoryStream(bytes));
        Assert.Equal(new Ack(5, 1), r.ReadAck());
        e = Assert.Throws<CheckpointStreamException>(() => r.ReadAck());
        Assert.Equal("ACK for epoch 5 follows the ACK for epoch 5: acknowledged epochs must increase", e.Message);
        Assert.Throws<InvalidOperationException>(() => r.ReadAck());
    }

    [Fact]
    public void A_backup_can_bound_the_memory_of_one_buffered_epoch()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Uncompressed, pages: 64, epochs: 1, seed: 33);
        var e = Assert.Throws<CheckpointStreamException>(() =>
            StreamTestExtensions.OpenReader(recorded.Bytes, new CheckpointReaderOptions { MaxEpochBytes = 100_000 }).ReadEpoch());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
        Assert.Contains("exceeds the buffering limit of 100000 bytes", e.Message);
        using var ok = StreamTestExtensions.OpenReader(recorded.Bytes, new CheckpointReaderOptions { MaxEpochBytes = 300_000 }).ReadEpoch();
        Assert.NotNull(ok);
    }
}
