using Remus.Checkpoint.Stream;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The page codec's decode of one compressed page, as <c>PageBatch.Validate</c>/<c>Apply</c> use it: the input is
/// an LZ4 block (as LZ4 pages carry) decoded into one page; when it decodes to exactly a page it is also XORed into
/// a page (as XOR+LZ4 pages are applied). A bad block is refused by returning false, never by throwing.
/// </summary>
public static class PageCodecTarget
{
    public static FuzzTarget Target { get; } = new("pagecodec",
        "PageCodec.TryDecompress (LZ4 / XOR+LZ4 page) + XorInPlace", Feed, []);

    private static void Feed(byte[] input)
    {
        var page = new byte[StreamFormat.PageSize + 64];
        page.AsSpan(StreamFormat.PageSize).Fill(0xA5);
        if (input.Length > PageCodec.MaxCompressedLength) input = input[..PageCodec.MaxCompressedLength];
        if (PageCodec.TryDecompress(input, page))
        {
            var target = new byte[StreamFormat.PageSize];
            PageCodec.XorInPlace(target, page);
            if (!target.AsSpan().SequenceEqual(page.AsSpan(0, StreamFormat.PageSize)))
                throw new FuzzInvariantException("XOR into a zero page is not the delta");
        }
        if (page.AsSpan(StreamFormat.PageSize).ContainsAnyExcept((byte)0xA5))
            throw new FuzzInvariantException("LZ4 decode wrote past the page");
    }
}
