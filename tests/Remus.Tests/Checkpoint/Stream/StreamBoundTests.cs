using System.Buffers.Binary;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// Issue 13: a receiver trusts no stream. Every length a stream states is judged before anything is allocated for it
/// (a 4 GiB or 2 GiB length, or one just under what an int holds, is refused at once and costs the reading thread
/// no more than a few MiB), and an epoch cannot carry more vCPU states than the receiver allows, nor a second kernel
/// state — both refused from the record's header, before its body is read.
/// </summary>
public class StreamBoundTests
{
    /// <summary>The reading thread may allocate this much while refusing a record (a bounded PAGE_DATA buffer is ~4 MiB, pooled in 8).</summary>
    private const long AllocationBudget = 16L << 20;

    public static TheoryData<uint, uint, uint> Claims()
    {
        var data = new TheoryData<uint, uint, uint>();
        foreach (uint length in new uint[] { 0xFFFF_FFFF, 0x8000_0000, 0x6000_0000, (uint)StreamFormat.MaxVolumeOpsLength + 8 })
        {
            foreach (var type in new[] { RecordType.PageData, RecordType.VcpuState, RecordType.KernelState, RecordType.VolumeOps })
                if (length > StreamFormat.MaxBodyLength(type)) data.Add(1, (uint)type, length);
            foreach (var type in new[] { RecordType.PageData, RecordType.Exit, RecordType.Release, RecordType.VolumeOps })
                if (length > StreamFormat.MaxBodyLength(type)) data.Add(2, (uint)type, length);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Claims))]
    public void A_huge_record_length_is_refused_before_anything_is_allocated_for_it(uint version, uint type, uint length)
    {
        var raw = new RawStreamBuilder(RawStreamBuilder.Header(version));
        var bytes = raw.Bytes(raw.RecordHeader(type, length)).Bytes(new byte[64]).ToArray();
        var reader = StreamTestExtensions.OpenReader(bytes);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var thrown = Record.Exception(() => reader.ReadEpoch());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < AllocationBudget, $"refusing a {length}-byte {StreamFormat.Name((RecordType)type)} allocated {allocated} bytes");
        var e = Assert.IsType<CheckpointStreamException>(thrown);
        Assert.Equal(CheckpointStreamError.InvalidRecord, e.Error);
        Assert.Contains($"length {length} exceeds the limit", e.Message);
    }

    [Theory]
    [InlineData(0xFFFF_FFFFu)]
    [InlineData(0x8000_0000u)]
    [InlineData(0x6000_0000u)]
    public void A_huge_configuration_length_in_the_stream_header_is_refused_before_anything_is_allocated(uint length)
    {
        var header = RawStreamBuilder.Header();
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), length);
        var reader = new CheckpointReader(new MemoryStream([.. header, .. new byte[64]]));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var thrown = Record.Exception(() => reader.ReadHeader());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < AllocationBudget, $"refusing a {length}-byte configuration allocated {allocated} bytes");
        var e = Assert.IsType<CheckpointStreamException>(thrown);
        Assert.Contains($"configuration length {length} exceeds the limit", e.Message);
    }

    [Theory]
    [InlineData(0xFFFF_FFFFu)]
    [InlineData(0x6000_0000u)]
    public void A_huge_length_on_the_back_channel_is_refused_before_anything_is_allocated(uint length)
    {
        var frame = new byte[8 + 64];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)RecordType.Ack);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), length);
        var reader = new AckReader(new MemoryStream(frame));

        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<CheckpointStreamException>(() => reader.ReadNext());
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < AllocationBudget);
    }

    /// <summary>An epoch of <paramref name="count"/> vCPU states (ids 0..count-1) and a kernel state, closed and ended.</summary>
    private static byte[] EpochWithVcpus(int count)
    {
        var raw = new RawStreamBuilder();
        for (uint id = 0; id < count; id++) raw.VcpuState(id, [1, 2, 3]);
        raw.Record(RecordType.KernelState, [9, 9]);
        return raw.CheckpointEnd(1).End().ToArray();
    }

    [Fact]
    public void An_epoch_with_more_vcpu_states_than_the_hard_limit_is_refused()
    {
        int limit = StreamFormat.MaxVcpuStatesPerEpoch;
        using (var ok = StreamTestExtensions.OpenReader(EpochWithVcpus(limit)).ReadEpoch())
            Assert.Equal(limit, ok!.VcpuStates.Count);

        // Even a reader told to allow more keeps the hard limit.
        var reader = StreamTestExtensions.OpenReader(EpochWithVcpus(limit + 1), new CheckpointReaderOptions { MaxVcpuStates = int.MaxValue });
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
        Assert.Contains($"more than {limit} VCPU_STATE records", e.Message);
    }

    [Fact]
    public void A_receiver_s_vcpu_limit_bounds_the_vcpu_states_of_an_epoch()
    {
        var options = new CheckpointReaderOptions { MaxVcpuStates = 4 };
        using (var ok = StreamTestExtensions.OpenReader(EpochWithVcpus(4), options).ReadEpoch())
            Assert.Equal(4, ok!.VcpuStates.Count);

        var e = Assert.Throws<CheckpointStreamException>(() => StreamTestExtensions.OpenReader(EpochWithVcpus(5), options).ReadEpoch());
        Assert.Contains("more than 4 VCPU_STATE records: this receiver allows at most 4 vCPUs", e.Message);
    }

    [Fact]
    public void The_vcpu_state_beyond_the_limit_is_refused_from_its_header_before_its_body_is_read()
    {
        // The fifth VCPU_STATE claims a whole MiB that never comes: the count refuses it, not the truncation.
        var raw = new RawStreamBuilder();
        for (uint id = 0; id < 4; id++) raw.VcpuState(id, [1]);
        var bytes = raw.Bytes(raw.RecordHeader((uint)RecordType.VcpuState, StreamFormat.MaxVcpuStateLength)).ToArray();
        var reader = StreamTestExtensions.OpenReader(bytes, new CheckpointReaderOptions { MaxVcpuStates = 4 });
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
        Assert.Contains("VCPU_STATE records", e.Message);
    }

    [Fact]
    public void A_second_kernel_state_in_an_epoch_is_refused_from_its_header_before_its_body_is_read()
    {
        // Without this, an epoch could make the reader buffer any number of 256 MiB kernel states before its end.
        var raw = new RawStreamBuilder();
        raw.Record(RecordType.KernelState, [1, 2, 3]);
        var bytes = raw.Bytes(raw.RecordHeader((uint)RecordType.KernelState, StreamFormat.MaxKernelStateLength)).ToArray();
        var reader = StreamTestExtensions.OpenReader(bytes);
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(CheckpointStreamError.Protocol, e.Error);
        Assert.Contains("two KERNEL_STATE records", e.Message);
    }
}
