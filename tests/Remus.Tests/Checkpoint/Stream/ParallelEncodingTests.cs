using System.Buffers.Binary;
using System.IO.Hashing;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// Issue 14 (a stream that fills the link): the writer compresses full records on several threads, the reader judges
/// large records on another thread while it reads on and applies large epochs on several. None of it may change a
/// byte on the wire, what the receiver's memory becomes, or what is refused.
/// </summary>
public class ParallelEncodingTests
{
    private const int P = StreamFormat.PageSize;

    /// <summary>
    /// A sink that allows parallel application (as guest memory does) and, with <paramref name="runs"/>, takes large
    /// epochs' whole pages in runs (as guest memory does, through its memfd), counting them.
    /// </summary>
    private sealed class ConcurrentImage(int pages, bool runs = false) : IPageSink
    {
        private int _runs;
        public MemoryImage Image { get; } = new(pages);
        public ulong PageCount => Image.PageCount;
        public Span<byte> GetPage(ulong pfn) => Image.Page((int)pfn);
        public bool ConcurrentPages => true;
        public bool PrefersRuns => runs;
        public int Runs => Volatile.Read(ref _runs);

        public void WriteRun(ulong firstPfn, ReadOnlySpan<byte> data)
        {
            Assert.True(runs, "WriteRun on a sink that does not prefer runs");
            Assert.True(data.Length > 0 && data.Length % P == 0 && data.Length <= PageRun.Pages * P, $"a run of {data.Length} bytes");
            Interlocked.Increment(ref _runs);
            data.CopyTo(Image.Bytes.AsSpan((int)firstPfn * P));
        }
    }

    /// <summary>Epochs of pages written the way pre-copy and Remus do: a full first round, then dirty sets.</summary>
    private sealed record Scenario(int Pages, int PagesPerRecord, long CacheBytes, List<int[]> Epochs, List<byte[]> Images);

    private static Scenario MakeScenario(int seed)
    {
        var f = new PageFactory(seed);
        var rng = f.Rng;
        int pages = rng.Next(1, 6000);
        int[] perRecord = [1, 7, 31, 32, 33, 100, 512, 1000, 1024];
        int pagesPerRecord = perRecord[rng.Next(perRecord.Length)];
        long cacheBytes = rng.Next(4) switch { 0 => 0, 1 => P, 2 => 64L * P, _ => 32L << 20 }; // eviction paths too
        var image = new MemoryImage(pages);
        for (int i = 0; i < pages; i++) f.Any(image.Page(i));
        var epochs = new List<int[]> { Enumerable.Range(0, pages).ToArray() };
        var images = new List<byte[]> { image.Snapshot() };
        for (int e = 1; e < 4; e++)
        {
            int dirty = rng.Next(0, pages + 1);
            var set = Enumerable.Range(0, pages).OrderBy(_ => rng.Next()).Take(dirty).Order().ToArray();
            foreach (int pfn in set) f.Mutate(image.Page(pfn));
            epochs.Add(set);
            images.Add(image.Snapshot());
        }
        return new Scenario(pages, pagesPerRecord, cacheBytes, epochs, images);
    }

    private static byte[] Write(Scenario s, int threads, bool compress = true)
    {
        var output = new MemoryStream();
        var options = new CheckpointWriterOptions
        {
            Compress = compress, PageCacheBytes = compress ? s.CacheBytes : 0, PagesPerRecord = s.PagesPerRecord, EncodeThreads = threads,
        };
        var writer = new CheckpointWriter(output, options);
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()) { Version = 2 });
        for (int e = 0; e < s.Epochs.Count; e++)
        {
            var source = new MemoryImage(s.Images[e]);
            ulong[] pfns = s.Epochs[e].Select(p => (ulong)p).ToArray();
            if (e % 2 == 0) writer.WritePages(pfns, source);
            else foreach (ulong pfn in pfns) writer.WritePage(pfn, source.Page((int)pfn)); // one at a time too
            writer.EndCheckpoint((ulong)e);
        }
        writer.WriteEnd();
        return output.ToArray();
    }

    [Fact]
    public void Parallel_encoding_writes_the_very_bytes_of_the_serial_writer_and_the_reader_rebuilds_each_epoch()
    {
        for (int seed = 1; seed <= 24; seed++)
        {
            var s = MakeScenario(seed);
            byte[] serial = Write(s, threads: 1);
            byte[] parallel = Write(s, threads: 3);
            Assert.True(serial.AsSpan().SequenceEqual(parallel),
                $"seed {seed}: {s.Pages} pages, {s.PagesPerRecord} per record, cache {s.CacheBytes}: the parallel writer's bytes differ from the serial writer's");

            foreach (bool runs in new[] { false, true })
            {
                var reader = new CheckpointReader(new MemoryStream(parallel, writable: false));
                reader.ReadHeader();
                var sink = new ConcurrentImage(s.Pages, runs);
                for (int e = 0; e < s.Epochs.Count; e++)
                {
                    using var epoch = reader.ReadEpoch() ?? throw new Xunit.Sdk.XunitException($"seed {seed}: epoch {e} missing");
                    epoch.ApplyTo(sink);
                    Assert.True(s.Images[e].AsSpan().SequenceEqual(sink.Image.Bytes), $"seed {seed} (runs: {runs}): the receiver's memory after epoch {e} differs from the sender's");
                }
                Assert.Null(reader.ReadEpoch());
                if (runs && s.Pages >= Epoch.ParallelApplyPages) Assert.True(sink.Runs > 0, $"seed {seed}: no run was written");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_page_sent_twice_in_a_large_epoch_is_applied_in_stream_order_when_applied_in_parallel(bool runs)
    {
        const int pages = 3 * Epoch.ParallelApplyPages;
        var f = new PageFactory(5);
        var image = new MemoryImage(pages);
        for (int i = 0; i < pages; i++) f.Any(image.Page(i));
        var output = new MemoryStream();
        var writer = new CheckpointWriter(output, new CheckpointWriterOptions { EncodeThreads = 2 });
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        var all = Enumerable.Range(0, pages).Select(p => (ulong)p).ToArray();
        writer.WritePages(all, image);
        writer.EndCheckpoint(0);
        // One epoch: every page changed (XOR deltas against the first), then a third of them changed again.
        for (int i = 0; i < pages; i++) f.Mutate(image.Page(i));
        writer.WritePages(all, image);
        for (int i = 0; i < pages; i += 3)
        {
            f.Mutate(image.Page(i));
            writer.WritePage((ulong)i, image.Page(i));
        }
        writer.EndCheckpoint(1);
        writer.WriteEnd();

        var reader = new CheckpointReader(new MemoryStream(output.ToArray(), writable: false));
        reader.ReadHeader();
        var sink = new ConcurrentImage(pages, runs);
        using (var first = reader.ReadEpoch()!) first.ApplyTo(sink);
        using (var second = reader.ReadEpoch()!)
        {
            Assert.True(second.PageCount >= Epoch.ParallelApplyPages);
            Assert.Contains(second.Pages, p => p.Encoding == PageEncoding.XorLz4);
            // Whole pages too, some of them sent again later in the epoch (then as XOR deltas: in order, or wrong).
            Assert.Contains(second.Pages, p => p.Encoding is PageEncoding.Lz4 or PageEncoding.Raw or PageEncoding.Zero);
            second.ApplyTo(sink);
        }
        if (runs) Assert.True(sink.Runs > 0, "no run was written");
        Assert.True(image.Bytes.AsSpan().SequenceEqual(sink.Image.Bytes), "the receiver's memory differs from the sender's");
    }

    [Fact]
    public void A_page_gathered_into_a_run_and_changed_again_right_after_ends_up_with_its_last_content()
    {
        // One large epoch in which every fifth page is sent whole and, at once, again as an XOR delta: the delta must
        // reach memory after the whole page, though the whole page is still gathered in a run when the delta comes.
        const int pages = Epoch.ParallelApplyPages + 64;
        var f = new PageFactory(11);
        var image = new MemoryImage(pages);
        var output = new MemoryStream();
        var writer = new CheckpointWriter(output, new CheckpointWriterOptions { EncodeThreads = 2 });
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        for (int i = 0; i < pages; i++)
        {
            f.Text(image.Page(i));
            writer.WritePage((ulong)i, image.Page(i));
            if (i % 5 != 0) continue;
            f.Mutate(image.Page(i));
            image.Page(i)[i % P] ^= 0x5a; // changed for certain
            writer.WritePage((ulong)i, image.Page(i));
        }
        writer.EndCheckpoint(0);
        writer.WriteEnd();

        var reader = new CheckpointReader(new MemoryStream(output.ToArray(), writable: false));
        reader.ReadHeader();
        var sink = new ConcurrentImage(pages, runs: true);
        using (var epoch = reader.ReadEpoch()!)
        {
            Assert.Contains(epoch.Pages, p => p.Encoding == PageEncoding.XorLz4);
            epoch.ApplyTo(sink);
        }
        Assert.True(sink.Runs > 0, "no run was written");
        Assert.True(image.Bytes.AsSpan().SequenceEqual(sink.Image.Bytes), "the receiver's memory differs from the sender's");
    }

    /// <summary>A one-epoch stream of <paramref name="pages"/> compressible pages (records large enough to be judged early).</summary>
    private static (byte[] Bytes, int HeaderLength, MemoryImage Source) LargeEpoch(int pages)
    {
        var f = new PageFactory(9);
        var image = new MemoryImage(pages);
        for (int i = 0; i < pages; i++)
            if (i % 2 == 0) f.Random(image.Page(i)); else f.Text(image.Page(i));
        var output = new MemoryStream();
        var writer = new CheckpointWriter(output, new CheckpointWriterOptions { EncodeThreads = 2 });
        var header = new StreamHeader("{}"u8.ToArray());
        writer.WriteHeader(header);
        writer.WritePages(Enumerable.Range(0, pages).Select(p => (ulong)p).ToArray(), image);
        writer.EndCheckpoint(7);
        writer.WriteEnd();
        byte[] bytes = output.ToArray();
        return (bytes, new CheckpointReader(new MemoryStream(bytes)).ReadHeader().EncodedLength, image);
    }

    /// <summary>Recomputes the checksum of the stream's only epoch after a test changed its bytes.</summary>
    private static void Reseal(byte[] bytes, int headerLength)
    {
        var end = StreamTestExtensions.Records(bytes).Single(r => r.Type == RecordType.CheckpointEnd);
        var hash = new XxHash3();
        hash.Append(bytes.AsSpan(headerLength, end.Offset + 8 + 8 - headerLength)); // through the epoch number (8-byte frames: version 1)
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(end.Offset + 8 + 8), hash.GetCurrentHashAsUInt64());
    }

    private static (CheckpointStreamException? Error, ConcurrentImage Sink) Receive(byte[] bytes, int pages)
    {
        var sink = new ConcurrentImage(pages);
        try
        {
            var reader = new CheckpointReader(new MemoryStream(bytes, writable: false));
            reader.ReadHeader();
            while (reader.ReadEpoch() is { } epoch)
                using (epoch) epoch.ApplyTo(sink);
            return (null, sink);
        }
        catch (CheckpointStreamException e)
        {
            return (e, sink);
        }
    }

    [Fact]
    public void A_bad_record_judged_early_with_a_valid_checksum_is_refused_whole_and_nothing_is_applied()
    {
        const int pages = 4096;
        var (bytes, headerLength, source) = LargeEpoch(pages);
        var (clean, cleanSink) = Receive(bytes, pages);
        Assert.Null(clean);
        Assert.True(source.Bytes.AsSpan().SequenceEqual(cleanSink.Image.Bytes));

        var records = StreamTestExtensions.Records(bytes).Where(r => r.Type == RecordType.PageData).ToList();
        Assert.True(records.Count >= 4);
        var victim = records[records.Count / 2];
        Assert.True(victim.Length >= PageBatch.PrecheckBytes, "the victim record is judged early");
        byte[] bad = (byte[])bytes.Clone();
        bad[victim.Offset + 8 + 4] = 1; // PAGE_DATA's reserved field
        Reseal(bad, headerLength);

        var (error, sink) = Receive(bad, pages);
        Assert.NotNull(error);
        Assert.Equal(CheckpointStreamError.InvalidRecord, error.Error);
        Assert.Equal("record PAGE_DATA in epoch 7: reserved field is not zero", error.Message);
        Assert.True(sink.Image.Bytes.AsSpan().IndexOfAnyExcept((byte)0) < 0, "pages were applied from a refused epoch");
    }

    [Fact]
    public void A_bad_record_judged_early_in_a_damaged_epoch_is_still_reported_as_a_checksum_mismatch()
    {
        const int pages = 4096;
        var (bytes, _, _) = LargeEpoch(pages);
        var victim = StreamTestExtensions.Records(bytes).Where(r => r.Type == RecordType.PageData).Skip(1).First();
        bytes[victim.Offset + 8 + 4] = 1; // not resealed: the epoch's checksum no longer matches

        var (error, sink) = Receive(bytes, pages);
        Assert.NotNull(error);
        Assert.Equal(CheckpointStreamError.ChecksumMismatch, error.Error);
        Assert.True(sink.Image.Bytes.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void EncodeThreads_below_one_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointWriter(new MemoryStream(), new CheckpointWriterOptions { EncodeThreads = 0 }));
    }
}
