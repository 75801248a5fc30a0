using System.Buffers.Binary;
using K4os.Compression.LZ4;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

public class CorruptionTests
{
    private static RecordedStream Small(int seed = 21, int epochs = 3, bool compress = true) =>
        StreamScenario.Record(compress ? CheckpointWriterOptions.Default : CheckpointWriterOptions.Uncompressed,
            pages: 16, epochs: epochs, seed: seed);

    /// <summary>
    /// Reads <paramref name="bytes"/> as a backup does, applying each verified epoch. Returns the exception that ended
    /// it (null for a clean END) and the number of epochs applied. The receiver must then equal that epoch's snapshot.
    /// </summary>
    private static (CheckpointStreamException? Error, int Applied, MemoryImage Receiver) Receive(byte[] bytes, int pages)
    {
        var receiver = new MemoryImage(pages);
        int applied = 0;
        try
        {
            var reader = new CheckpointReader(new MemoryStream(bytes, writable: false));
            reader.ReadHeader();
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch) epoch.ApplyTo(receiver);
                applied++;
            }
            return (null, applied, receiver);
        }
        catch (CheckpointStreamException e)
        {
            return (e, applied, receiver);
        }
    }

    private static void AssertStateOfEpoch(RecordedStream recorded, int applied, MemoryImage receiver)
    {
        byte[] expected = applied == 0 ? new byte[recorded.Pages * 4096] : recorded.Snapshots[applied - 1];
        Assert.True(expected.AsSpan().SequenceEqual(receiver.Bytes), $"receiver memory is not that of the last complete epoch ({applied})");
    }

    [Fact]
    public void A_flipped_byte_in_a_raw_page_body_is_a_checksum_mismatch_and_nothing_of_the_epoch_is_applied()
    {
        var recorded = Small(compress: false);
        byte[] bytes = (byte[])recorded.Bytes.Clone();
        // The first PAGE_DATA record after the first epoch; 100 bytes into its page data.
        long epochStart = new CheckpointReader(new MemoryStream(bytes)).ReadHeader().EncodedLength + recorded.Summaries[0].Bytes;
        var (at, _, _) = StreamTestExtensions.Records(bytes).First(r => r.Type == RecordType.PageData && r.Offset > epochStart);
        int victim = 1;
        while (epochStart + recorded.Summaries[victim].Bytes <= at) epochStart += recorded.Summaries[victim++].Bytes;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8));
        bytes[at + 16 + count * 12 + 100] ^= 0x01;

        var (error, applied, receiver) = Receive(bytes, recorded.Pages);
        Assert.NotNull(error);
        Assert.Equal(CheckpointStreamError.ChecksumMismatch, error.Error);
        Assert.StartsWith($"checksum mismatch in epoch {recorded.Summaries[victim].Epoch}", error.Message);
        Assert.Equal(victim, applied);
        AssertStateOfEpoch(recorded, applied, receiver);
    }

    [Fact]
    public void A_flipped_byte_in_compressed_page_data_is_a_checksum_mismatch_not_a_decoding_error()
    {
        var recorded = Small(seed: 22);
        int epoch1 = new CheckpointReader(new MemoryStream(recorded.Bytes)).ReadHeader().EncodedLength;
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(recorded.Bytes.AsSpan(epoch1 + 8));
        for (int at = 0; at < 64; at++)
        {
            byte[] bytes = (byte[])recorded.Bytes.Clone();
            bytes[epoch1 + 16 + count * 12 + at * 7] ^= 0xFF;
            var (error, applied, _) = Receive(bytes, recorded.Pages);
            Assert.Equal(CheckpointStreamError.ChecksumMismatch, error?.Error);
            Assert.Equal(0, applied);
        }
    }

    /// <summary>
    /// Every byte offset of the stream except inside page data and opaque blobs, where every 37th: the header, record
    /// headers, descriptors, lengths, padding and CHECKPOINT_END are covered exhaustively, contents by sampling.
    /// </summary>
    private static IEnumerable<int> Offsets(byte[] stream)
    {
        var data = new List<(int From, int To)>();
        foreach (var (offset, type, length) in StreamTestExtensions.Records(stream))
            if (type == RecordType.PageData)
            {
                int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(offset + 8));
                data.Add((offset + 16 + count * 12, offset + 8 + length));
            }
            else if (type is RecordType.VcpuState or RecordType.KernelState)
                data.Add((offset + 16, offset + 8 + length));
        for (int at = 0; at < stream.Length; at++)
            if (!data.Exists(d => at >= d.From && at < d.To) || at % 37 == 0)
                yield return at;
    }

    [Fact]
    public void Every_single_byte_flip_anywhere_is_refused_and_only_complete_epochs_are_applied()
    {
        var recorded = Small(seed: 23, epochs: 3);
        foreach (int at in Offsets(recorded.Bytes))
        {
            byte[] bytes = (byte[])recorded.Bytes.Clone();
            bytes[at] ^= (byte)(1 << (at % 8));
            var (error, applied, receiver) = Receive(bytes, recorded.Pages);
            Assert.True(error is not null, $"a flip at byte {at} of {bytes.Length} went unnoticed");
            AssertStateOfEpoch(recorded, applied, receiver);
        }
    }

    [Fact]
    public void Truncation_anywhere_is_refused_as_truncated_and_only_complete_epochs_are_applied()
    {
        var recorded = Small(seed: 24, epochs: 3);
        foreach (int cut in Offsets(recorded.Bytes))
        {
            var (error, applied, receiver) = Receive(recorded.Bytes[..cut], recorded.Pages);
            Assert.True(error is not null, $"a cut at {cut} went unnoticed");
            Assert.Equal(CheckpointStreamError.Truncated, error.Error);
            Assert.StartsWith("truncated stream: expected ", error.Message);
            AssertStateOfEpoch(recorded, applied, receiver);
        }
        Assert.Null(Receive(recorded.Bytes, recorded.Pages).Error);
    }

    [Fact]
    public void Truncated_messages_say_how_many_bytes_of_what_are_missing()
    {
        var b = new RawStreamBuilder();
        byte[] page = new byte[4096];
        b.Record(RecordType.PageData, RawStreamBuilder.PageData((1, 0, page)));
        byte[] full = b.ToArray();
        int cut = RawStreamBuilder.Header().Length + 8 + 8 + 12; // record header, fixed part, one descriptor, one length
        var e = StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(full[..cut]).ReadEpoch());
        Assert.Equal("truncated stream: expected 4096 more bytes of record PAGE_DATA", e.Message);

        e = StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(RawStreamBuilder.Header()).ReadEpoch());
        Assert.Equal("truncated stream: expected 8 more bytes of record header (the stream ended without an END record)", e.Message);

        e = StreamTestExtensions.Refused(() => new CheckpointReader(new MemoryStream(RawStreamBuilder.Header()[..20])).ReadHeader());
        Assert.Equal("truncated stream: expected 12 more bytes of stream header", e.Message);

        var big = new RawStreamBuilder().Bytes(new byte[] { 3, 0, 0, 0, 0, 0, 0, 0x08 }).Bytes(new byte[100]).ToArray(); // KERNEL_STATE of 128 MiB
        long before = GC.GetAllocatedBytesForCurrentThread();
        e = StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(big).ReadEpoch());
        Assert.Equal($"truncated stream: expected {(128 << 20) - 100} more bytes of record KERNEL_STATE", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 << 20, "a bogus length was allocated up front");
    }

    [Fact]
    public void Bad_magic_is_not_a_Remus_stream()
    {
        byte[] bytes = RawStreamBuilder.Header();
        bytes[0] = (byte)'X';
        var e = StreamTestExtensions.Refused(() => new CheckpointReader(new MemoryStream(bytes)).ReadHeader());
        Assert.Equal(CheckpointStreamError.NotAStream, e.Error);
        Assert.StartsWith("not a Remus checkpoint stream", e.Message);

        e = StreamTestExtensions.Refused(() => new CheckpointReader(new MemoryStream("#!/bin/sh\necho hi\n"u8.ToArray())).ReadHeader());
        Assert.Equal(CheckpointStreamError.NotAStream, e.Error);
    }

    [Fact]
    public void Header_fields_are_validated_with_clear_messages()
    {
        (byte[] Header, CheckpointStreamError Error, string Message)[] cases =
        [
            (RawStreamBuilder.Header(version: 7), CheckpointStreamError.Unsupported, "unsupported stream version 7 (this build reads 1 to 2)"),
            (RawStreamBuilder.Header(pageSize: 8192), CheckpointStreamError.Unsupported, "unsupported page size 8192 (this build handles 4096)"),
            (RawStreamBuilder.Header(arch: 183), CheckpointStreamError.Unsupported, "unsupported architecture code 183 (this build handles 62 = x86-64)"),
            (RawStreamBuilder.Header(flags: 6), CheckpointStreamError.Unsupported, "unsupported stream flags 0x6 (this build knows 0x1)"),
            (RawStreamBuilder.Header(reserved: 1), CheckpointStreamError.InvalidRecord, "stream header: reserved field is not zero"),
            (RawStreamBuilder.Header(config: [0xC3, 0x28]), CheckpointStreamError.InvalidRecord, "stream header: domain configuration is not valid UTF-8"),
            (RawStreamBuilder.Header(corruptChecksum: true), CheckpointStreamError.ChecksumMismatch, "stream header checksum mismatch"),
        ];
        foreach (var (header, error, message) in cases)
        {
            var e = StreamTestExtensions.Refused(() => new CheckpointReader(new MemoryStream(header)).ReadHeader());
            Assert.Equal(error, e.Error);
            Assert.StartsWith(message, e.Message);
        }

        byte[] huge = RawStreamBuilder.Header();
        BinaryPrimitives.WriteUInt32LittleEndian(huge.AsSpan(24), 0xFFFF_FFFF);
        var h = StreamTestExtensions.Refused(() => new CheckpointReader(new MemoryStream(huge)).ReadHeader());
        Assert.Equal("stream header: domain configuration length 4294967295 exceeds the limit of 1048576", h.Message);
    }

    [Fact]
    public void An_unknown_record_type_is_an_error_not_skipped()
    {
        var bytes = new RawStreamBuilder().Record(0x99, new byte[8]).CheckpointEnd(1).End().ToArray();
        var e = StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(bytes).ReadEpoch());
        Assert.Equal(CheckpointStreamError.UnknownRecord, e.Error);
        Assert.Equal("unknown record type 0x99", e.Message);

        // Even with the "optional" bit Xen uses (bit 31): there are no optional records.
        bytes = new RawStreamBuilder().Record(0x8000_0001, []).CheckpointEnd(1).End().ToArray();
        Assert.Equal("unknown record type 0x80000001", StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(bytes).ReadEpoch()).Message);
    }

    [Fact]
    public void Absurd_lengths_are_refused_before_anything_is_allocated()
    {
        (uint Type, uint Length, string Message)[] cases =
        [
            (2, 0xFFFF_FFF0, "record VCPU_STATE length 4294967280 exceeds the limit of 1048576"),
            (3, 0xFFFF_FFF0, "record KERNEL_STATE length 4294967280 exceeds the limit of 268435456"),
            (1, 0x7FFF_FFFF, $"record PAGE_DATA length 2147483647 exceeds the limit of {StreamFormat.MaxPageDataLength}"),
            (4, 12, "record CHECKPOINT_END has length 12 (must be 16)"),
            (5, 4096, "record HEARTBEAT has length 4096 (must be 8)"),
            (0, 8, "record END has length 8 (must be 0)"),
        ];
        foreach (var (type, length, message) in cases)
        {
            var bytes = new RawStreamBuilder().Record(type, new byte[16], length: length).ToArray();
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = StreamTestExtensions.Refused(() => StreamTestExtensions.OpenReader(bytes).ReadEpoch());
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
            Assert.Equal(CheckpointStreamError.InvalidRecord, e.Error);
            Assert.Equal(message, e.Message);
        }
    }

    public static TheoryData<string, byte[], CheckpointStreamError, string> Malformed()
    {
        byte[] page = new byte[4096];
        byte[] lz4Short = new byte[100];
        int n = LZ4Codec.Encode(new byte[2048], lz4Short); // decodes to 2048 bytes, not a page
        lz4Short = lz4Short[..n];
        byte[] lz4Page = new byte[100];
        lz4Page = lz4Page[..LZ4Codec.Encode(new byte[4096], lz4Page)];

        RawStreamBuilder B() => new();
        return new()
        {
            { "count 0", B().Record(RecordType.PageData, RawStreamBuilder.PageData()).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page count 0 is outside 1..1024" },
            { "reserved", B().Record(RecordType.PageData, RawStreamBuilder.PageData(7, [(1UL, 4096u, page)])).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: reserved field is not zero" },
            { "pfn reserved bits", B().Record(RecordType.PageData, RawStreamBuilder.PageData((1UL << 52 | 5, 0, page))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 has reserved descriptor bits set" },
            { "unknown encoding", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 9, page))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 has unknown encoding 9" },
            { "raw too short", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 0, page[..4000]))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 encoded RAW has invalid length 4000" },
            { "zero with data", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 1, new byte[8]))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 encoded ZERO has invalid length 8" },
            { "lz4 wrong size", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 3, lz4Short))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 (LZ4) does not decode to 4096 bytes" },
            { "lz4 garbage", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 4, new byte[] { 0xFF, 0xFF, 0xFF }))).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page 0x5 (XOR_LZ4) does not decode to 4096 bytes" },
            { "lengths overrun", B().Record(RecordType.PageData, RawStreamBuilder.PageData(0, [(5UL | 3UL << 60, 4000u, lz4Page)])).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: page data overruns the record" },
            { "bytes left over", B().Record(RecordType.PageData, RawStreamBuilder.PageData((5, 1, Array.Empty<byte>())).Concat(new byte[8]).ToArray()).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record PAGE_DATA in epoch 1: 8 bytes after the last page's data" },
            { "vcpu reserved", B().VcpuState(0, [1, 2, 3], reserved: 1).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record VCPU_STATE in epoch 1: reserved field is not zero" },
            { "vcpu short", B().Record(RecordType.VcpuState, new byte[4]).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record VCPU_STATE in epoch 1: body of 4 bytes is shorter than its 8-byte prefix" },
            { "vcpu twice", B().VcpuState(2, [1]).VcpuState(2, [2]).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.Protocol, "epoch 1 carries two VCPU_STATE records for vCPU 2" },
            { "kernel twice", B().Record(RecordType.KernelState, [1]).Record(RecordType.KernelState, [2]).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.Protocol, "the epoch after the header carries two KERNEL_STATE records" },
            { "padding", B().Record((uint)RecordType.KernelState, new byte[3], padByte: 0xEE).CheckpointEnd(1).ToArray(),
                CheckpointStreamError.InvalidRecord, "record KERNEL_STATE: padding bytes are not zero" },
            { "epoch goes back", B().CheckpointEnd(5).CheckpointEnd(5).ToArray(),
                CheckpointStreamError.Protocol, "epoch 5 follows epoch 5: epoch numbers must increase" },
            { "END inside an epoch", B().Record(RecordType.KernelState, [1]).End().ToArray(),
                CheckpointStreamError.Protocol, "END record inside an unfinished epoch (1 records since the last CHECKPOINT_END)" },
            { "ACK forward", B().Record(RecordType.Ack, new byte[16]).ToArray(),
                CheckpointStreamError.Protocol, "unexpected record ACK in the checkpoint stream" },
            { "checksum", B().Record(RecordType.KernelState, [1]).CheckpointEnd(3, corruptChecksum: true).ToArray(),
                CheckpointStreamError.ChecksumMismatch, "checksum mismatch in epoch 3" },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_records_with_valid_checksums_are_refused(string name, byte[] bytes, CheckpointStreamError error, string message)
    {
        var reader = StreamTestExtensions.OpenReader(bytes);
        CheckpointStreamException e;
        try
        {
            while (reader.ReadEpoch() is { } epoch) epoch.Dispose();
            throw new Xunit.Sdk.XunitException($"{name}: accepted");
        }
        catch (CheckpointStreamException caught)
        {
            e = caught;
        }
        Assert.Equal(error, e.Error);
        Assert.StartsWith(message, e.Message);
        // A faulted reader stays faulted.
        Assert.Throws<InvalidOperationException>(() => reader.ReadEpoch());
    }

    [Fact]
    public void The_hand_built_encoder_and_the_reader_agree_on_the_documented_format()
    {
        byte[] text = new byte[4096];
        new PageFactory(3).Text(text);
        byte[] lz4 = new byte[4200];
        lz4 = lz4[..LZ4Codec.Encode(text, lz4)];
        byte[] delta = new byte[4096];
        delta[17] = 0x40;
        byte[] xor = new byte[4200];
        xor = xor[..LZ4Codec.Encode(delta, xor)];
        byte[] raw = new byte[4096];
        new Random(4).NextBytes(raw);
        byte[] volumeA = "8 bytes!"u8.ToArray();
        byte[] volumeB = new byte[1001];
        new Random(5).NextBytes(volumeB);

        byte[] bytes = new RawStreamBuilder()
            .Heartbeat(1_700_000_000_000_000_000)
            .Record(RecordType.PageData, RawStreamBuilder.PageData((0, 0, raw), (1, 3, lz4), (2, 1, []), (1, 4, xor), (0, 2, [])))
            .Record(12, volumeA) // VOLUME_OPS (§4.12): opaque bodies of 8 .. 4 MiB + 64 KiB, in stream order
            .Record(12, volumeB)
            .VcpuState(0, [9, 8, 7])
            .Record(RecordType.KernelState, [1, 2, 3, 4, 5])
            .CheckpointEnd(42)
            .Heartbeat(1_700_000_000_100_000_000)
            .End()
            .ToArray();

        var reader = StreamTestExtensions.OpenReader(bytes);
        var beats = new List<DateTimeOffset>();
        reader.HeartbeatReceived += beats.Add;
        var sink = new MemoryImage(3);
        sink.Page(2).Fill(0x77);
        using (var epoch = reader.ReadEpoch()!)
        {
            Assert.Equal(42UL, epoch.Number);
            epoch.ApplyTo(sink);
            Assert.Equal(new byte[] { 9, 8, 7 }, epoch.VcpuStates[0].State);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, epoch.KernelState);
            Assert.Equal(2, epoch.VolumeBatchCount);
            Assert.Equal(volumeA, epoch.VolumeBatches[0].ToArray());
            Assert.Equal(volumeB, epoch.VolumeBatches[1].ToArray());
        }
        text[17] ^= 0x40;
        Assert.Equal(raw, sink.Page(0).ToArray());
        Assert.Equal(text, sink.Page(1).ToArray());
        Assert.All(sink.Page(2).ToArray(), b => Assert.Equal(0, b));
        Assert.Null(reader.ReadEpoch());
        Assert.Equal(new[] { DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_100) }, beats);
    }

    [Fact]
    public void Writer_refuses_misuse()
    {
        var w = new CheckpointWriter(new MemoryStream());
        Assert.Throws<InvalidOperationException>(() => w.WritePage(0, new byte[4096]));
        Assert.Throws<ArgumentException>(() => new StreamHeader(new byte[] { 0xC3, 0x28 }));
        Assert.Throws<ArgumentException>(() => new StreamHeader(new byte[StreamFormat.MaxConfigBytes + 1]));
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        Assert.Throws<InvalidOperationException>(() => w.WriteHeader(new StreamHeader("{}"u8.ToArray())));
        Assert.Throws<ArgumentException>(() => w.WritePage(0, new byte[4095]));
        Assert.Throws<ArgumentOutOfRangeException>(() => w.WritePage(1UL << 52, new byte[4096]));
        w.EndCheckpoint(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => w.EndCheckpoint(3));
        w.WritePage(0, new byte[4096]);
        Assert.Throws<InvalidOperationException>(() => w.WriteEnd());
        w.EndCheckpoint(4);
        w.WriteEnd();
        Assert.Throws<InvalidOperationException>(() => w.WriteHeartbeat());
        Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointWriter(new MemoryStream(), new CheckpointWriterOptions { PagesPerRecord = 1025 }));
    }

    [Fact]
    public void A_writer_whose_stream_fails_is_faulted()
    {
        var w = new CheckpointWriter(new FailingStream());
        Assert.Throws<IOException>(() => w.WriteHeader(new StreamHeader("{}"u8.ToArray())));
        var e = Assert.Throws<InvalidOperationException>(() => w.WriteHeartbeat());
        Assert.StartsWith("the writer is faulted", e.Message);
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("connection reset");
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("connection reset");
    }
}
