using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// <see cref="CheckpointWriter.CacheNewPages"/> off (a pre-copy's first round): pages not in the cache go whole and are
/// not remembered, pages already cached are still updated, and the receiver rebuilds every epoch either way.
/// </summary>
public class CacheNewPagesTests
{
    private const int Pages = 200;

    private static (CheckpointWriter Writer, MemoryStream Output) NewWriter()
    {
        var output = new MemoryStream();
        var writer = new CheckpointWriter(output, new CheckpointWriterOptions { EncodeThreads = 1 });
        writer.WriteHeader(new StreamHeader("{}"u8.ToArray()));
        return (writer, output);
    }

    private static long Send(CheckpointWriter writer, MemoryImage image, ulong epoch)
    {
        long xor = writer.Statistics.XorLz4Pages;
        writer.WritePages(Enumerable.Range(0, Pages).Select(p => (ulong)p).ToArray(), image);
        writer.EndCheckpoint(epoch);
        return writer.Statistics.XorLz4Pages - xor;
    }

    private static void Mutate(PageFactory f, MemoryImage image)
    {
        for (int i = 0; i < Pages; i++)
        {
            f.Text(image.Page(i));
            image.Page(i)[i] ^= 1;
        }
    }

    private static void AssertRebuilds(MemoryStream output, List<byte[]> images)
    {
        var reader = new CheckpointReader(new MemoryStream(output.ToArray(), writable: false));
        reader.ReadHeader();
        var sink = new MemoryImage(Pages);
        foreach (var expected in images)
        {
            using var epoch = reader.ReadEpoch()!;
            epoch.ApplyTo(sink);
            Assert.True(expected.AsSpan().SequenceEqual(sink.Bytes), $"the receiver's memory after epoch {epoch.Number} differs");
        }
    }

    [Fact]
    public void Pages_sent_while_off_are_not_remembered_and_go_whole_next_time()
    {
        var f = new PageFactory(21);
        var image = new MemoryImage(Pages);
        Mutate(f, image);
        var (writer, output) = NewWriter();
        var images = new List<byte[]>();
        writer.CacheNewPages = false;
        Assert.Equal(0, Send(writer, image, 0));
        images.Add(image.Snapshot());
        writer.CacheNewPages = true;
        Mutate(f, image);
        Assert.Equal(0, Send(writer, image, 1)); // nothing was remembered: every page whole again, now remembered
        images.Add(image.Snapshot());
        Mutate(f, image);
        Assert.Equal(Pages, Send(writer, image, 2)); // deltas against epoch 1's content
        images.Add(image.Snapshot());
        writer.WriteEnd();
        AssertRebuilds(output, images);
    }

    [Fact]
    public void Pages_already_cached_are_updated_while_off_so_later_deltas_rebuild_them()
    {
        var f = new PageFactory(22);
        var image = new MemoryImage(Pages);
        Mutate(f, image);
        var (writer, output) = NewWriter();
        var images = new List<byte[]>();
        Send(writer, image, 0);
        images.Add(image.Snapshot());
        writer.CacheNewPages = false;
        Mutate(f, image);
        Assert.Equal(Pages, Send(writer, image, 1)); // cached: deltas, and the cache takes the new content
        images.Add(image.Snapshot());
        writer.CacheNewPages = true;
        Mutate(f, image);
        Assert.Equal(Pages, Send(writer, image, 2)); // deltas against epoch 1's content, not epoch 0's
        images.Add(image.Snapshot());
        writer.WriteEnd();
        AssertRebuilds(output, images);
    }
}
