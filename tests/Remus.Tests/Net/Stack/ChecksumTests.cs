using Remus.Sandbox.Net;
using Xunit;

namespace Remus.Tests.Net.Stack;

/// <summary>The fast Internet checksum equals RFC 1071's word-by-word sum, at every length and alignment, chained or not.</summary>
public sealed class ChecksumTests
{
    [Fact]
    public void Equals_the_word_by_word_sum_for_every_length_and_offset()
    {
        var rng = new Random(3);
        var buf = new byte[3000];
        for (int round = 0; round < 3000; round++)
        {
            rng.NextBytes(buf);
            if (round % 7 == 0) buf.AsSpan().Fill(0xFF); // the carries' worst case
            int offset = rng.Next(16), length = rng.Next(buf.Length - offset);
            if (round < 64) length = round;
            var data = buf.AsSpan(offset, length);
            Assert.Equal(Frames.Checksum(data), Checksum.Of(data));
            // As a running sum: a pseudo-header first, then an even-length head and the rest.
            int split = rng.Next(length / 2 + 1) * 2;
            uint start = (uint)rng.Next(0x40000);
            uint chained = Checksum.Add(Checksum.Add(start, data[..split]), data[split..]);
            Assert.Equal(Reference(start, data), Checksum.Finish(chained));
        }
    }

    private static ushort Reference(uint start, ReadOnlySpan<byte> data)
    {
        ulong sum = start;
        for (int i = 0; i < data.Length; i += 2) sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
