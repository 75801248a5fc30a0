using K4os.Compression.LZ4;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// The receiver judges compressed pages by walking their LZ4 blocks instead of decoding them (Lz4BlockCheck). That
/// is only sound if every block the walk accepts really decodes to one page; these tests hold it to the decoder.
/// </summary>
public sealed class Lz4BlockCheckTests
{
    private const int Page = 4096;

    /// <summary>Pages of the kinds a domain has: zeros with a few words, text, patterns, half random, XOR deltas.</summary>
    private static IEnumerable<byte[]> SamplePages(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var page = new byte[Page];
            switch (i % 6)
            {
                case 0:
                    for (int k = 0; k < 1 + rng.Next(40); k++) page[rng.Next(Page)] = (byte)rng.Next(256);
                    break;
                case 1:
                    const string words = "the quick brown fox jumps over the lazy dog; remus checkpoints ";
                    for (int k = 0; k < Page; k++) page[k] = (byte)words[(k * (1 + rng.Next(3)) + i) % words.Length];
                    break;
                case 2:
                    int period = 1 + rng.Next(64);
                    var unit = new byte[period];
                    rng.NextBytes(unit);
                    for (int k = 0; k < Page; k++) page[k] = unit[k % period];
                    break;
                case 3:
                    rng.NextBytes(page.AsSpan(0, rng.Next(Page / 2)));
                    break;
                case 4:
                    for (int k = 0; k < Page; k += 8) BitConverter.TryWriteBytes(page.AsSpan(k), (long)(k * 3 + rng.Next(4)));
                    break;
                default:
                    rng.NextBytes(page.AsSpan(rng.Next(Page - 64), 64)); // a delta: one small change
                    break;
            }
            yield return page;
        }
    }

    private static byte[] Encode(byte[] page)
    {
        var target = new byte[LZ4Codec.MaximumOutputSize(Page)];
        int n = LZ4Codec.Encode(page, target, LZ4Level.L00_FAST);
        return target.AsSpan(0, n).ToArray();
    }

    private static bool DecoderAccepts(ReadOnlySpan<byte> block)
    {
        // The decoder may write past the end it is given only within the page, never beyond: a page is enough.
        Span<byte> page = stackalloc byte[Page];
        return LZ4Codec.Decode(block, page) == Page;
    }

    [Fact]
    public void Blocks_written_by_the_encoder_are_accepted_by_the_walk_and_match_their_page()
    {
        int compressed = 0;
        foreach (var page in SamplePages(seed: 1, count: 600))
        {
            var block = Encode(page);
            if (block.Length >= Page) continue; // goes RAW on the wire
            compressed++;
            Assert.True(Lz4BlockCheck.DecodesTo(block, Page), $"the walk refused an encoder block of {block.Length} bytes");
            var back = new byte[Page];
            Assert.True(PageCodec.TryDecompress(block, back));
            Assert.Equal(page, back);
        }
        Assert.True(compressed > 400, $"only {compressed} sample pages compressed: the sample does not exercise the walk");
    }

    [Fact]
    public void Every_block_the_walk_accepts_decodes_to_one_page_and_the_judgement_is_the_decoders()
    {
        var rng = new Random(7);
        var scratch = new byte[Page];
        int walkAccepts = 0, walkRefusesDecoderAccepts = 0, bothRefuse = 0;
        var blocks = SamplePages(seed: 2, count: 300).Select(Encode).Where(b => b.Length < Page).ToList();
        for (int trial = 0; trial < 40_000; trial++)
        {
            byte[] block = Mutate(blocks[rng.Next(blocks.Count)], rng);
            bool walk = Lz4BlockCheck.DecodesTo(block, Page);
            bool decoder = DecoderAccepts(block);
            if (walk)
            {
                Assert.True(decoder, $"the walk accepted a block the decoder refuses: {Convert.ToHexString(block)}");
                walkAccepts++;
            }
            else if (decoder) walkRefusesDecoderAccepts++;
            else bothRefuse++;
            // What the receiver uses: the walk, then a real decode — exactly the decoder's judgement.
            Assert.Equal(decoder, PageCodec.Decodes(block, scratch));
        }
        // Not vacuous: mutations land on both sides of the line.
        Assert.True(walkAccepts > 1000, $"walk accepted {walkAccepts}");
        Assert.True(bothRefuse > 1000, $"both refused {bothRefuse}");
        _ = walkRefusesDecoderAccepts; // allowed (offset 0 and friends), judged by the fallback
    }

    [Fact]
    public void Blocks_built_at_the_format_edges_are_judged_as_the_decoder_judges_them()
    {
        // Random mutations rarely reach the end conditions, so these blocks are built to sit on them: matches that
        // end 0..16 bytes before the page's end, offsets of 0, 1, exactly and one past what was produced, lengths at
        // the 15 and 255 steps of their encodings, literal runs that end the input exactly or one byte off.
        var rng = new Random(11);
        var scratch = new byte[Page];
        int walkAccepts = 0, bothRefuse = 0;
        for (int trial = 0; trial < 60_000; trial++)
        {
            byte[] block = EdgeBlock(rng);
            bool walk = Lz4BlockCheck.DecodesTo(block, Page);
            bool decoder = DecoderAccepts(block);
            if (walk)
            {
                Assert.True(decoder, $"the walk accepted a block the decoder refuses: {Convert.ToHexString(block)}");
                walkAccepts++;
            }
            else if (!decoder) bothRefuse++;
            Assert.Equal(decoder, PageCodec.Decodes(block, scratch));
        }
        Assert.True(walkAccepts > 3000, $"walk accepted {walkAccepts}");
        Assert.True(bothRefuse > 3000, $"both refused {bothRefuse}");
    }

    private static int Pick(Random rng, params int[] choices) => choices[rng.Next(choices.Length)];

    private static byte[] EdgeBlock(Random rng)
    {
        var b = new List<byte>();
        int op = 0;
        int sequences = rng.Next(4);
        for (int i = 0; i < sequences; i++)
        {
            int literals = i == 0 ? Pick(rng, 1, 4, 8, 14, 15, 16, 40, 269, 270) : Pick(rng, 0, 1, 3, 14, 15, 30);
            // The last match ends k bytes before the page's end, where the decoder's limits are: a long match from
            // early on, or a short one reached by a long literal run.
            int match;
            if (i == sequences - 1)
            {
                int k = rng.Next(17);
                if (rng.Next(2) == 0)
                {
                    match = Page - k - (op + literals);
                    if (match < 4) match = 4;
                }
                else
                {
                    match = rng.Next(4, 9);
                    literals = Math.Max(Page - k - match - op, 0);
                }
            }
            else match = Pick(rng, 4, 5, 18, 19, 22, 273, 274, 600);
            int produced = op + literals;
            int offset = Pick(rng, 0, 1, 2, 7, 8, 9, Math.Max(produced, 1), produced + 1, rng.Next(1, Math.Max(produced, 1) + 1));
            Sequence(b, rng, literals, match, offset);
            op = produced + match;
        }
        int last = Page - op + Pick(rng, 0, 0, 0, 0, -1, 1);
        Sequence(b, rng, Math.Max(last, 0), match: -1, offset: 0);
        if (rng.Next(8) == 0) b.RemoveAt(b.Count - 1);
        if (rng.Next(8) == 0) b.Add((byte)rng.Next(256));
        return b.ToArray();
    }

    /// <summary>One sequence in LZ4's encoding; <paramref name="match"/> -1 for the last (literals only).</summary>
    private static void Sequence(List<byte> b, Random rng, int literals, int match, int offset)
    {
        int ml = match < 0 ? 0 : match - 4;
        b.Add((byte)(Math.Min(literals, 15) << 4 | Math.Min(Math.Max(ml, 0), 15)));
        if (literals >= 15) Length(b, literals - 15);
        for (int i = 0; i < literals; i++) b.Add((byte)rng.Next(256));
        if (match < 0) return;
        b.Add((byte)offset);
        b.Add((byte)(offset >> 8));
        if (ml >= 15) Length(b, ml - 15);
    }

    private static void Length(List<byte> b, int rest)
    {
        while (rest >= 255) { b.Add(255); rest -= 255; }
        b.Add((byte)rest);
    }

    [Fact]
    public void A_block_the_walk_is_too_strict_for_is_still_judged_by_the_decoder()
    {
        // 8 literals, then a match at offset 0 (the decoder accepts it and copies from the output's own cursor),
        // then 64 literals: exactly one page.
        var block = new List<byte> { 0x80 | 0x0f }; // 8 literals, match length 15 + VLE
        block.AddRange(Enumerable.Repeat((byte)'a', 8));
        block.AddRange([0, 0]); // offset 0
        int literalsAtEnd = 64;
        int match = Page - 8 - literalsAtEnd; // bytes the match must produce
        int vle = match - 4 - 15;
        while (vle >= 255) { block.Add(255); vle -= 255; }
        block.Add((byte)vle);
        block.Add(0xf0);
        int rest = literalsAtEnd - 15;
        while (rest >= 255) { block.Add(255); rest -= 255; }
        block.Add((byte)rest);
        block.AddRange(Enumerable.Repeat((byte)'z', literalsAtEnd));
        var bytes = block.ToArray();

        Assert.False(Lz4BlockCheck.DecodesTo(bytes, Page));
        Assert.True(DecoderAccepts(bytes));
        Assert.True(PageCodec.Decodes(bytes, new byte[Page]));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x00 })]
    [InlineData(new byte[] { 0xf0, 0xff })]
    public void Degenerate_blocks_are_refused(byte[] block)
    {
        Assert.False(Lz4BlockCheck.DecodesTo(block, Page));
        Assert.False(PageCodec.Decodes(block, new byte[Page]));
    }

    private static byte[] Mutate(byte[] source, Random rng)
    {
        var b = source.ToList();
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits && b.Count > 0; e++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(7))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[at] = (byte)rng.Next(256); break;
                case 2: b[at] = (byte)(rng.Next(2) == 0 ? 0 : 255); break;
                case 3: b.RemoveAt(at); break;
                case 4: b.Insert(at, (byte)rng.Next(256)); break;
                case 5: b.RemoveRange(at, b.Count - at); break; // truncate
                default: b[at] = (byte)((b[at] & 0xf0) | rng.Next(16)); break; // a token's match length
            }
        }
        return b.ToArray();
    }
}
