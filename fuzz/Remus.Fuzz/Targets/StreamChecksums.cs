using System.Buffers.Binary;
using System.IO.Hashing;
using Remus.Checkpoint.Stream;

namespace Remus.Fuzz.Targets;

/// <summary>
/// Rewrites the checksums of a (mutated) checkpoint stream so that it passes them: the header's XXH3, each version 2
/// record header's XXH32 check, and each CHECKPOINT_END's epoch XXH3 — hashed exactly as the reader hashes. Without
/// this almost every mutation dies at a checksum and the fuzzer never reaches what is judged after it (page
/// descriptors, LZ4, vCPU ids, volume ops, EXIT). Lenient: stops at the first record it cannot frame.
/// </summary>
public static class StreamChecksums
{
    public static byte[] Fix(byte[] input)
    {
        var d = (byte[])input.Clone();
        if (d.Length < StreamFormat.HeaderFixedSize) return d;
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(8));
        uint configLength = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(24));
        if (configLength > StreamFormat.MaxConfigBytes) return d;
        long total = StreamFormat.HeaderFixedSize + configLength + StreamFormat.PaddingFor(configLength) + 8;
        if (total > d.Length) return d;
        int at = (int)total - 8;
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(at), XxHash3.HashToUInt64(d.AsSpan(0, at)));

        int headerSize = version >= 2 ? StreamFormat.CheckedRecordHeaderSize : StreamFormat.RecordHeaderSize;
        var hash = new XxHash3();
        long pos = total;
        while (pos + headerSize <= d.Length)
        {
            var header = d.AsSpan((int)pos, headerSize);
            if (headerSize == StreamFormat.CheckedRecordHeaderSize)
                BinaryPrimitives.WriteUInt32LittleEndian(header[8..], XxHash32.HashToUInt32(header[..8]));
            var type = (RecordType)BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            long next = pos + headerSize + length + StreamFormat.PaddingFor(length);
            if (next > d.Length) break;
            var body = d.AsSpan((int)pos + headerSize, (int)length);
            switch (type)
            {
                case RecordType.End:
                case RecordType.Release:
                    return d; // the reader stops here
                case RecordType.CheckpointEnd when length == StreamFormat.CheckpointEndLength:
                    hash.Append(header);
                    hash.Append(body[..8]);
                    BinaryPrimitives.WriteUInt64LittleEndian(body[8..], hash.GetCurrentHashAsUInt64());
                    hash.Reset();
                    break;
                case RecordType.Heartbeat:
                    hash.Append(header);
                    hash.Append(body);
                    break;
                default:
                    hash.Append(d.AsSpan((int)pos, (int)(next - pos)));
                    break;
            }
            pos = next;
        }
        return d;
    }
}
