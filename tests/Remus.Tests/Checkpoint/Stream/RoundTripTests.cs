using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

public class RoundTripTests
{
    public static TheoryData<bool, long, int, int> Configurations => new()
    {
        // compress, cache bytes, pages per record, seed
        { true, 32L << 20, 512, 1 },
        { true, 32L << 20, 7, 2 },
        { true, 16 * 4096, 512, 3 },   // cache far smaller than memory: constant eviction
        { true, 1 * 4096, 64, 4 },     // a single slot
        { true, 0, 512, 5 },           // no cache: whole pages only
        { false, 0, 512, 6 },          // -u: RAW only
        { false, 0, 1, 7 },            // one page per record
        { true, 32L << 20, 1024, 8 },  // the format's largest batch
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Receiver_reproduces_the_sender_memory_at_every_epoch(bool compress, long cacheBytes, int perRecord, int seed)
    {
        var options = new CheckpointWriterOptions { Compress = compress, PageCacheBytes = cacheBytes, PagesPerRecord = perRecord };
        var recorded = StreamScenario.Record(options, pages: 300, epochs: 7, seed: seed);
        StreamScenario.Replay(recorded);
    }

    [Fact]
    public void Uncompressed_mode_sends_every_page_raw()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Uncompressed);
        var s = recorded.Statistics;
        Assert.Equal(s.Pages, s.RawPages);
        Assert.True(s.CompressionRatio is > 0.99 and < 1.0);
        var header = new CheckpointReader(new MemoryStream(recorded.Bytes)).ReadHeader();
        Assert.Equal(StreamFlags.None, header.Flags);
    }

    [Fact]
    public void Compressed_mode_uses_every_encoding_and_shrinks_the_stream()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 400, epochs: 8, seed: 11);
        var s = recorded.Statistics;
        foreach (PageEncoding e in Enum.GetValues<PageEncoding>())
            Assert.True(s.PagesWith(e) > 0, $"no page was sent {StreamFormat.Name(e)}");
        Assert.Equal(s.Pages, s.RawPages + s.ZeroPages + s.UnchangedPages + s.Lz4Pages + s.XorLz4Pages);
        Assert.True(s.CompressionRatio > 1.5, $"ratio {s.CompressionRatio}");
        Assert.Equal(0, s.CacheEvictions);
        Assert.Equal(8, s.Epochs);
        Assert.Equal(recorded.Bytes.Length, s.BytesWritten);
        var header = new CheckpointReader(new MemoryStream(recorded.Bytes)).ReadHeader();
        Assert.Equal(StreamFlags.Compressed, header.Flags);
        Assert.Equal(StreamArchitecture.X86_64, header.Architecture);
        Assert.Equal(1u, header.Version);
        Assert.Equal(4096, header.PageSize);
    }

    [Fact]
    public void A_small_cache_evicts_and_still_round_trips()
    {
        var options = new CheckpointWriterOptions { PageCacheBytes = 8 * 4096 };
        var recorded = StreamScenario.Record(options, pages: 200, epochs: 6, seed: 12);
        Assert.True(recorded.Statistics.CacheEvictions > 0);
        StreamScenario.Replay(recorded);
    }

    [Fact]
    public void Epoch_bytes_add_up_to_the_stream()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, seed: 13);
        var header = new CheckpointReader(new MemoryStream(recorded.Bytes)).ReadHeader();
        long total = header.EncodedLength + recorded.Summaries.Sum(s => s.Bytes) + 8 /* END */;
        Assert.Equal(recorded.Bytes.Length, total);
        Assert.Equal(0, recorded.Bytes.Length % 8);
    }

    [Fact]
    public void Zero_and_unchanged_pages_cost_only_their_descriptor()
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        var page = new byte[4096];
        for (ulong pfn = 0; pfn < 512; pfn++) w.WritePage(pfn, page); // zero
        var first = w.EndCheckpoint(1);
        new Random(3).NextBytes(page);
        for (ulong pfn = 0; pfn < 512; pfn++) w.WritePage(pfn, page); // LZ4/RAW, now cached
        w.EndCheckpoint(2);
        for (ulong pfn = 0; pfn < 512; pfn++) w.WritePage(pfn, page); // unchanged
        var third = w.EndCheckpoint(3);
        // 512 pages: record header 8 + fixed 8 + 12 per page; CHECKPOINT_END 24.
        Assert.Equal(8 + 8 + 512 * 12 + 24, first.Bytes);
        Assert.Equal(first.Bytes, third.Bytes);
        Assert.Equal(512, w.Statistics.UnchangedPages);
        Assert.Equal(512, w.Statistics.ZeroPages);
    }

    [Fact]
    public void The_example_in_the_format_document_is_byte_exact()
    {
        // docs/stream-format.md, section 5.
        const string expected =
            "52454d5553434b500100000000100000" + "3e000000010000000c00000000000000" +
            "7b226e616d65223a2264227d00000000" + "71dd4b5e1d9dc26d0100000041000000" +
            "02000000000000000001000000000010" + "01010000000000300000000021000000" +
            "13000100132a08000f0200ffffffffff" + "ffffffffffffffffffffe75000000000" +
            "0000000000000000020000000b000000" + "0000000000000000aabbcc0000000000" +
            "04000000100000000100000000000000" + "fc8ee278253edde20000000000000000";
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader("{\"name\":\"d\"}"u8.ToArray()));
        w.WritePage(0x100, new byte[4096]);
        var page = new byte[4096];
        page[8] = 0x2a;
        w.WritePage(0x101, page);
        w.WriteVcpuState([0xAA, 0xBB, 0xCC]);
        w.EndCheckpoint(1);
        w.WriteEnd();
        Assert.Equal(expected, Convert.ToHexStringLower(ms.ToArray()));
    }

    [Fact]
    public void Pages_enumerates_frames_and_encodings_in_stream_order()
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms, new CheckpointWriterOptions { PagesPerRecord = 2 });
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        var text = new byte[4096];
        new PageFactory(1).Text(text);
        var random = new byte[4096];
        new Random(1).NextBytes(random);
        w.WritePage(9, new byte[4096]);
        w.WritePage(3, text);
        w.WritePage(7, random);
        w.WritePage(3, text);
        text[100] ^= 0x55;
        w.WritePage(3, text);
        w.EndCheckpoint(5);
        w.WriteEnd();

        var r = StreamTestExtensions.OpenReader(ms.ToArray());
        using var epoch = r.ReadEpoch()!;
        Assert.Equal(
            new[] { (9UL, PageEncoding.Zero), (3UL, PageEncoding.Lz4), (7UL, PageEncoding.Raw), (3UL, PageEncoding.Unchanged), (3UL, PageEncoding.XorLz4) },
            epoch.Pages.ToArray());
        var sink = new MemoryImage(10);
        epoch.ApplyTo(sink);
        Assert.Equal(text, sink.Page(3).ToArray());
        Assert.Equal(random, sink.Page(7).ToArray());
    }

    [Fact]
    public void Several_vcpus_large_kernel_state_and_empty_epochs_round_trip()
    {
        var f = new PageFactory(5);
        byte[] kernel = f.Blob(3 << 20); // beyond the reader's 1 MiB growth step
        byte[] v0 = f.Blob(5000), v1 = f.Blob(1), v3 = [];
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms);
        w.WriteHeader(new StreamHeader(ReadOnlyMemory<byte>.Empty));
        var empty = w.EndCheckpoint(0);
        w.WriteVcpuState(0, v0);
        w.WriteVcpuState(1, v1);
        w.WriteVcpuState(3, v3);
        w.WriteKernelState(kernel);
        w.EndCheckpoint(1);
        w.WriteEnd();

        var r = StreamTestExtensions.OpenReader(ms.ToArray());
        Assert.Equal(0, r.Header!.DomainConfig.Length);
        using (var e0 = r.ReadEpoch()!)
        {
            Assert.Equal(0UL, e0.Number);
            Assert.Equal(0, e0.PageCount);
            Assert.Empty(e0.VcpuStates);
            Assert.Null(e0.KernelState);
            Assert.Equal(24, e0.StreamBytes);
            Assert.Equal(empty.Checksum, e0.Checksum);
        }
        using (var e1 = r.ReadEpoch()!)
        {
            Assert.Equal(new[] { 0u, 1u, 3u }, e1.VcpuStates.Select(v => v.VcpuId));
            Assert.Equal(v0, e1.VcpuStates[0].State);
            Assert.Equal(v1, e1.VcpuStates[1].State);
            Assert.Empty(e1.VcpuStates[2].State);
            Assert.Equal(kernel, e1.KernelState);
        }
        Assert.Null(r.ReadEpoch());
        Assert.Equal(2, r.EpochsRead);
        Assert.Equal(1UL, r.LastEpoch);
    }

    [Fact]
    public void The_reader_never_reads_past_END()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, epochs: 2, seed: 14);
        var ms = new MemoryStream();
        ms.Write(recorded.Bytes);
        ms.Write("TRAILER"u8);
        ms.Position = 0;
        var r = new CheckpointReader(ms);
        r.ReadHeader();
        while (r.ReadEpoch() is { } e) e.Dispose();
        Assert.Equal(recorded.Bytes.Length, ms.Position);
        Assert.Equal(recorded.Bytes.Length, r.BytesRead);
    }

    [Fact]
    public void Writer_hot_path_does_not_allocate_per_page()
    {
        // Two versions of a 2048-page image, written alternately: every page is a delta against a 1024-page
        // cache that keeps evicting, plus zero and unchanged pages.
        var f = new PageFactory(9);
        var a = new MemoryImage(2048);
        for (int i = 0; i < a.Pages; i++) f.Any(a.Page(i));
        var b = new MemoryImage(a.Snapshot());
        for (int i = 0; i < b.Pages; i++) f.Mutate(b.Page(i));
        // Random order, so that the cache (half the image) both hits and evicts.
        int[][] orders = [.. Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, a.Pages).OrderBy(_ => f.Rng.Next()).ToArray())];
        var w = new CheckpointWriter(System.IO.Stream.Null, new CheckpointWriterOptions { PageCacheBytes = 1024 * 4096 });
        w.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        ulong epoch = 0;
        void Round(MemoryImage image)
        {
            foreach (int i in orders[epoch % 2]) w.WritePage((ulong)i, image.Page(i));
            w.EndCheckpoint(epoch++);
        }
        for (int i = 0; i < 4; i++) Round(i % 2 == 0 ? a : b); // warm-up: cache chunks, dictionary growth, JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 4; i++) Round(i % 2 == 0 ? a : b);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1024, $"{allocated} bytes allocated for {4 * a.Pages} pages");
        Assert.True(w.Statistics.CacheEvictions > 0);
        Assert.True(w.Statistics.XorLz4Pages > 0);
    }

    [Fact]
    public void ApplyTo_refuses_a_second_application_and_a_too_small_target()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 50, epochs: 1, seed: 15);
        var r = StreamTestExtensions.OpenReader(recorded.Bytes);
        using var epoch = r.ReadEpoch()!;
        var small = new MemoryImage(49);
        small.Bytes.AsSpan().Fill(0xAB);
        var e = Assert.Throws<CheckpointStreamException>(() => epoch.ApplyTo(small));
        Assert.Equal(CheckpointStreamError.TargetMismatch, e.Error);
        Assert.Contains("page 0x31, beyond the target's 49 pages", e.Message);
        Assert.All(small.Bytes, b => Assert.Equal(0xAB, b)); // nothing applied
        Assert.False(epoch.IsApplied);

        var picky = new PickySink(50, refused: 7);
        e = Assert.Throws<CheckpointStreamException>(() => epoch.ApplyTo(picky));
        Assert.Contains("page 0x7, which the target does not accept; nothing was applied", e.Message);
        Assert.Equal(0, picky.Writes);

        var target = new MemoryImage(50);
        epoch.ApplyTo(target);
        Assert.Equal(recorded.Snapshots[0], target.Bytes);
        Assert.Throws<InvalidOperationException>(() => epoch.ApplyTo(target));
        epoch.Dispose();
        Assert.Throws<ObjectDisposedException>(() => epoch.ApplyTo(new MemoryImage(50)));
    }

    private sealed class PickySink(int pages, ulong refused) : IPageSink
    {
        private readonly MemoryImage _memory = new(pages);
        public int Writes { get; private set; }
        public ulong PageCount => (ulong)pages;
        public bool Accepts(ulong pfn) => pfn != refused;
        public Span<byte> GetPage(ulong pfn)
        {
            Writes++;
            return _memory.Page((int)pfn);
        }
    }
}
