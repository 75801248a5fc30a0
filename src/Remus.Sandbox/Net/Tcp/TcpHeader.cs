using System.Buffers.Binary;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// A parsed TCP header with the options TCP uses here (MSS, window scale, SACK-permitted, SACK blocks, timestamps),
/// and the writer of outgoing headers.
/// </summary>
internal struct TcpHeader
{
    public const int MinLength = 20;
    public const byte OptEnd = 0, OptNop = 1, OptMss = 2, OptWScale = 3, OptSackOk = 4, OptSack = 5, OptTimestamp = 8;

    public ushort SourcePort, DestinationPort;
    public uint SequenceNumber, AckNumber;
    public int HeaderLength;
    public TcpFlags Flags;
    public ushort Window;

    public int Mss;              // 0: absent
    public int WindowScale;      // -1: absent
    public bool SackPermitted;
    public bool HasTimestamp;
    public uint TsVal, TsEcr;
    public int SackCount;
    public SackBlocks Sack;

    [System.Runtime.CompilerServices.InlineArray(8)]
    public struct SackBlocks
    {
        private uint _e;
    }

    public readonly bool Has(TcpFlags f) => (Flags & f) != 0;

    /// <summary>Parses <paramref name="segment"/>; false when it is too short or its offset is bad (checksum checked by the caller).</summary>
    public static bool TryParse(ReadOnlySpan<byte> segment, out TcpHeader h)
    {
        h = default;
        h.WindowScale = -1;
        if (segment.Length < MinLength) return false;
        h.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
        h.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
        h.SequenceNumber = BinaryPrimitives.ReadUInt32BigEndian(segment[4..]);
        h.AckNumber = BinaryPrimitives.ReadUInt32BigEndian(segment[8..]);
        h.HeaderLength = (segment[12] >> 4) * 4;
        h.Flags = (TcpFlags)(segment[13] & 0x3F);
        h.Window = BinaryPrimitives.ReadUInt16BigEndian(segment[14..]);
        if (h.HeaderLength < MinLength || h.HeaderLength > segment.Length) return false;
        var opts = segment[MinLength..h.HeaderLength];
        int i = 0;
        while (i < opts.Length)
        {
            byte kind = opts[i];
            if (kind == OptEnd) break;
            if (kind == OptNop) { i++; continue; }
            if (i + 1 >= opts.Length) break;
            int len = opts[i + 1];
            if (len < 2 || i + len > opts.Length) break;
            var o = opts.Slice(i + 2, len - 2);
            switch (kind)
            {
                case OptMss when len == 4: h.Mss = BinaryPrimitives.ReadUInt16BigEndian(o); break;
                case OptWScale when len == 3: h.WindowScale = Math.Min((int)o[0], 14); break;
                case OptSackOk when len == 2: h.SackPermitted = true; break;
                case OptTimestamp when len == 10:
                    h.HasTimestamp = true;
                    h.TsVal = BinaryPrimitives.ReadUInt32BigEndian(o);
                    h.TsEcr = BinaryPrimitives.ReadUInt32BigEndian(o[4..]);
                    break;
                case OptSack when (len - 2) % 8 == 0:
                    for (int b = 0; b < (len - 2) / 8 && h.SackCount < 4; b++, h.SackCount++)
                    {
                        h.Sack[h.SackCount * 2] = BinaryPrimitives.ReadUInt32BigEndian(o[(b * 8)..]);
                        h.Sack[h.SackCount * 2 + 1] = BinaryPrimitives.ReadUInt32BigEndian(o[(b * 8 + 4)..]);
                    }
                    break;
            }
            i += len;
        }
        return true;
    }

    /// <summary>
    /// Writes a header into <paramref name="b"/> (options included, padded to 4 bytes) and returns its length; the
    /// checksum field is left 0 for <see cref="FinishChecksum"/>.
    /// </summary>
    public static int Write(Span<byte> b, ushort sport, ushort dport, uint seq, uint ack, TcpFlags flags, ushort window,
        in OutOptions opt)
    {
        int o = MinLength;
        if (opt.Mss > 0)
        {
            b[o] = OptMss; b[o + 1] = 4; BinaryPrimitives.WriteUInt16BigEndian(b[(o + 2)..], (ushort)opt.Mss); o += 4;
        }
        if (opt.SackPermitted && opt.Timestamp)
        {
            b[o] = OptSackOk; b[o + 1] = 2; o += 2;
            b[o] = OptTimestamp; b[o + 1] = 10; o += 2;
            BinaryPrimitives.WriteUInt32BigEndian(b[o..], opt.TsVal); BinaryPrimitives.WriteUInt32BigEndian(b[(o + 4)..], opt.TsEcr); o += 8;
        }
        else
        {
            if (opt.SackPermitted) { b[o] = OptNop; b[o + 1] = OptNop; b[o + 2] = OptSackOk; b[o + 3] = 2; o += 4; }
            if (opt.Timestamp)
            {
                b[o] = OptNop; b[o + 1] = OptNop; b[o + 2] = OptTimestamp; b[o + 3] = 10; o += 4;
                BinaryPrimitives.WriteUInt32BigEndian(b[o..], opt.TsVal); BinaryPrimitives.WriteUInt32BigEndian(b[(o + 4)..], opt.TsEcr); o += 8;
            }
        }
        if (opt.WindowScale >= 0) { b[o] = OptNop; b[o + 1] = OptWScale; b[o + 2] = 3; b[o + 3] = (byte)opt.WindowScale; o += 4; }
        if (opt.SackCount > 0)
        {
            b[o] = OptNop; b[o + 1] = OptNop; b[o + 2] = OptSack; b[o + 3] = (byte)(2 + 8 * opt.SackCount); o += 4;
            for (int i = 0; i < opt.SackCount; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(b[o..], opt.Sack[i * 2]);
                BinaryPrimitives.WriteUInt32BigEndian(b[(o + 4)..], opt.Sack[i * 2 + 1]);
                o += 8;
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(b, sport);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], dport);
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], ack);
        b[12] = (byte)((o / 4) << 4);
        b[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(b[14..], window);
        b[16] = 0; b[17] = 0; b[18] = 0; b[19] = 0;
        return o;
    }

    /// <summary>Stores the checksum of the whole segment (header and data) with the pseudo-header.</summary>
    public static void FinishChecksum(Span<byte> segment, IPv4Address src, IPv4Address dst)
    {
        segment[16] = 0; segment[17] = 0;
        uint sum = Checksum.Add(Checksum.PseudoHeader(src, dst, 6, segment.Length), segment);
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], Checksum.Finish(sum));
    }

    /// <summary>Whether the segment's checksum (with the pseudo-header) is right.</summary>
    public static bool ChecksumOk(ReadOnlySpan<byte> segment, IPv4Address src, IPv4Address dst) =>
        Checksum.Finish(Checksum.Add(Checksum.PseudoHeader(src, dst, 6, segment.Length), segment)) == 0;

    /// <summary>The options of one outgoing segment.</summary>
    public struct OutOptions
    {
        public int Mss;
        public int WindowScale;
        public bool SackPermitted;
        public bool Timestamp;
        public uint TsVal, TsEcr;
        public int SackCount;
        public SackBlocks Sack;

        public static OutOptions None => new() { WindowScale = -1 };
    }
}
