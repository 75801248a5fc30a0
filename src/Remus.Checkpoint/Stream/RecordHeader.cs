using System.Buffers.Binary;
using System.IO.Hashing;

namespace Remus.Checkpoint.Stream;

/// <summary>
/// The frame of a forward-stream record. Version 1: type:u32, length:u32 (8 bytes). Version 2: type:u32,
/// length:u32, check:u32 (XXH32, seed 0, of the 8 bytes before it), reserved:u32 (zero) — 16 bytes, so a flipped bit
/// in a type or a length is refused as corrupt at once instead of making the reader wait for bytes that never
/// come. The back channel keeps the 8-byte frame (its records all have fixed lengths).
/// </summary>
internal static class RecordHeader
{
    /// <summary>Bytes of a record header in a stream of <paramref name="version"/>.</summary>
    public static int Size(uint version) => version >= 2 ? StreamFormat.CheckedRecordHeaderSize : StreamFormat.RecordHeaderSize;

    /// <summary>Writes the header of a record into <paramref name="destination"/>; returns its size.</summary>
    public static int Write(Span<byte> destination, RecordType type, uint length, uint version)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], length);
        if (version < 2) return StreamFormat.RecordHeaderSize;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Check(destination[..8]));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], 0);
        return StreamFormat.CheckedRecordHeaderSize;
    }

    /// <summary>
    /// Verifies a version 2 header's check and reserved field, before its type or length is trusted.
    /// </summary>
    public static void Verify(ReadOnlySpan<byte> header, long position)
    {
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        uint computed = Check(header[..8]);
        if (stored != computed)
            throw new CheckpointStreamException(CheckpointStreamError.ChecksumMismatch,
                $"corrupt record header at byte {position} (check {stored:x8}, computed {computed:x8}): its type and length cannot be trusted");
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[12..]) != 0)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"record header at byte {position}: reserved field is not zero");
    }

    private static uint Check(ReadOnlySpan<byte> typeAndLength) => XxHash32.HashToUInt32(typeAndLength);
}
