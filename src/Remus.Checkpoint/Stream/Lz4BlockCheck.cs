namespace Remus.Checkpoint.Stream;

/// <summary>
/// Judges an LZ4 block without decoding it: walks its sequences (tokens, lengths, offsets) and writes nothing.
/// A receiver judges every compressed page of an epoch before it applies any (nothing is applied from a bad epoch),
/// and decoding each page into scratch only to learn that it decodes doubled the receiver's LZ4 work.
/// <para>
/// The walk is strict: it accepts only blocks that follow the LZ4 block format to the letter and produce exactly
/// <c>outputSize</c> bytes — every offset 1..bytes produced so far, the last match ending at least
/// <see cref="LastLiterals"/> bytes before the end, the block ending with a literal run that ends the input.
/// It takes the same "is this the last sequence" decision as the decoder K4os.Compression.LZ4 1.3 ports from
/// lz4 1.9 (<c>LZ4_decompress_generic</c>, safe mode), so every block it accepts decodes there to exactly
/// <c>outputSize</c> bytes (<c>Lz4BlockCheckTests</c> holds it to that). The decoder accepts a few blocks this walk
/// refuses (offset 0, a last match inside the last 5 bytes reached by its shortcut path); callers fall back to a
/// real decode for those, so what is accepted does not change — only what it costs. K4os's encoder never writes them.
/// </para>
/// </summary>
internal static class Lz4BlockCheck
{
    private const int MinMatch = 4, LastLiterals = 5, MatchFindLimit = 12, RunMask = 15, MatchMask = 15;

    /// <summary>True when <paramref name="block"/> is a well-formed LZ4 block that decodes to exactly <paramref name="outputSize"/> bytes.</summary>
    public static bool DecodesTo(ReadOnlySpan<byte> block, int outputSize)
    {
        if (outputSize <= 0 || block.IsEmpty) return false;
        int ip = 0, end = block.Length;
        int op = 0; // bytes produced so far
        while (true)
        {
            if (ip >= end) return false;
            int token = block[ip++];
            int literals = token >> 4;
            if (literals == RunMask)
            {
                int s;
                do
                {
                    if (ip >= end) return false;
                    s = block[ip++];
                    literals += s;
                    if (literals > outputSize) return false; // keeps the sums far from overflow
                }
                while (s == 255);
                // The decoder also refuses a run length that starts within 15 bytes of the input's end, and stops
                // reading one early when a 255 byte lands there. Neither can happen to a block accepted below: a
                // run of 15 or more literals that fits the input
                // leaves at least 15 bytes after its length (at least 270 after a 255 byte).
            }

            int afterLiterals = op + literals;
            if (afterLiterals > outputSize - MatchFindLimit || ip + literals > end - (2 + 1 + LastLiterals))
            {
                // The decoder's last sequence: its literals must end the input and fill the output exactly.
                return ip + literals == end && afterLiterals == outputSize;
            }
            ip += literals;
            op = afterLiterals;

            int offset = block[ip] | block[ip + 1] << 8; // in range: ip + literals <= end - 8 above
            ip += 2;
            if (offset == 0 || offset > op) return false;

            int match = token & MatchMask;
            if (match == MatchMask)
            {
                int s;
                do
                {
                    if (ip >= end) return false;
                    s = block[ip++];
                    match += s;
                    if (match > outputSize) return false;
                }
                while (s == 255);
                // The decoder refuses a match length whose bytes reach the input's last 4; such a block cannot end
                // below either: the match would end inside the output's last 5 bytes, or no literal run could follow.
            }
            match += MinMatch;
            if (op + match > outputSize - LastLiterals) return false;
            op += match;
        }
    }
}
