using Remus.Checkpoint.Stream;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The page codec's decode of one compressed page, as <c>PageBatch.Validate</c>/<c>Apply</c> use it: the input is
/// an LZ4 block (as LZ4 pages carry) decoded into one page; when it decodes to exactly a page it is also XORed into
/// a page (as XOR+LZ4 pages are applied). A bad block is refused by returning false, never by throwing, and the
/// walk that judges blocks without decoding them (<c>Lz4BlockCheck</c>) never accepts a block the decoder refuses.
/// </summary>
public static class PageCodecTarget
{
    public static FuzzTarget Target { get; } = new("pagecodec",
        "PageCodec.TryDecompress and Lz4BlockCheck (LZ4 / XOR+LZ4 page) + XorInPlace", Feed, []);

    private static void Feed(byte[] input)
    {
        var page = new byte[StreamFormat.PageSize + 64];
        page.AsSpan(StreamFormat.PageSize).Fill(0xA5);
        if (input.Length > PageCodec.MaxCompressedLength) input = input[..PageCodec.MaxCompressedLength];
        bool decodes = PageCodec.TryDecompress(input, page);
        // The receiver judges pages by walking their blocks: it must never accept what the decoder refuses.
        if (Lz4BlockCheck.DecodesTo(input, StreamFormat.PageSize) && !decodes)
            throw new FuzzInvariantException("Lz4BlockCheck accepted a block the decoder refuses");
        if (decodes)
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
