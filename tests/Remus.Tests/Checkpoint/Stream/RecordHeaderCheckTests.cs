using System.Buffers.Binary;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>
/// Version 2 record headers carry a check of their own (XXH32 of type and length, then a reserved zero word): a
/// flipped bit in a header is a corrupt stream at once, never a reader waiting for bytes that a bogus length claims
/// (the harness found a backup starved that way, swallowing RELEASE and then failing over: issue 15). Version 1
/// streams (saves, migrations) keep their 8-byte headers, byte for byte.
/// </summary>
public class RecordHeaderCheckTests
{
    /// <summary>A Remus-like stream: an epoch of pages, vCPU and kernel state, a heartbeat, an exit epoch, then RELEASE or END.</summary>
    private static byte[] Written(uint version, bool release = false)
    {
        var ms = new MemoryStream();
        var w = new CheckpointWriter(ms, CheckpointWriterOptions.Default);
        w.WriteHeader(new StreamHeader("{\"name\":\"t\"}"u8.ToArray()) { Version = version });
        var page = new byte[4096];
        for (int pfn = 1; pfn < 6; pfn++)
        {
            page.AsSpan().Fill((byte)(pfn * 7));
            w.WritePage((ulong)pfn, page);
        }
        w.WriteVcpuState(0, [1, 2, 3, 4, 5]);
        w.WriteKernelState([9, 8, 7]);
        w.WriteHeartbeat();
        w.EndCheckpoint(1);
        if (version >= 2)
        {
            w.WriteExit(0, "bye\n"u8);
            w.EndCheckpoint(2);
        }
        if (release) w.WriteRelease("gave up");
        else w.WriteEnd();
        return ms.ToArray();
    }

    private static CheckpointStreamException? ReadAll(byte[] bytes)
    {
        try
        {
            var r = new CheckpointReader(new MemoryStream(bytes, writable: false));
            r.ReadHeader();
            while (r.ReadEpoch() is { } e) e.Dispose();
            return null;
        }
        catch (CheckpointStreamException e)
        {
            return e;
        }
    }

    [Fact]
    public void A_version_2_record_header_is_16_bytes_with_the_xxh32_of_type_and_length_and_a_zero_word()
    {
        foreach (bool release in new[] { false, true })
        {
            var bytes = Written(2, release);
            Assert.Null(ReadAll(bytes));
            var records = StreamTestExtensions.Records(bytes);
            Assert.Equal(release ? RecordType.Release : RecordType.End, records[^1].Type);
            Assert.Contains(records, r => r.Type == RecordType.Exit);
            foreach (var (at, _, _) in records)
            {
                Assert.Equal(System.IO.Hashing.XxHash32.HashToUInt32(bytes.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
                Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12)));
            }
            var (last, _, length) = records[^1];
            Assert.Equal(bytes.Length, last + 16 + length + StreamFormat.PaddingFor(length));
        }
    }

    /// <summary>Every bit of every record header of a version 2 stream: the stream is refused as corrupt, never as truncated.</summary>
    [Fact]
    public void A_flipped_bit_in_any_header_byte_of_a_version_2_stream_is_refused_as_corrupt_not_truncated()
    {
        foreach (bool release in new[] { false, true })
        {
            var clean = Written(2, release);
            int flips = 0;
            foreach (var (at, type, _) in StreamTestExtensions.Records(clean))
                for (int b = 0; b < 16; b++)
                    for (int bit = 0; bit < 8; bit++)
                    {
                        var bytes = (byte[])clean.Clone();
                        bytes[at + b] ^= (byte)(1 << bit);
                        var e = ReadAll(bytes);
                        Assert.True(e != null, $"{StreamFormat.Name(type)} at {at}: bit {bit} of header byte {b} flipped, and the stream was accepted");
                        Assert.True(e.Error != CheckpointStreamError.Truncated,
                            $"{StreamFormat.Name(type)} at {at}: bit {bit} of header byte {b} flipped read as truncated: {e.Message}");
                        if (b < 12) Assert.Equal(CheckpointStreamError.ChecksumMismatch, e.Error);
                        else Assert.Equal(CheckpointStreamError.InvalidRecord, e.Error);
                        flips++;
                    }
            Assert.True(flips >= 8 * 16 * 7);
        }
    }

    /// <summary>A length grown by a flipped bit on a live connection: refused at once, not waited for.</summary>
    [Fact]
    public void A_grown_length_on_a_stream_that_stays_open_is_refused_without_waiting_for_its_bytes()
    {
        var bytes = Written(2);
        var (at, _, _) = StreamTestExtensions.Records(bytes).First(r => r.Type == RecordType.PageData);
        bytes[at + 5] ^= 0x60; // the seed the harness found: + 24 KiB
        var open = new NeverEndingStream(bytes);
        var r = new CheckpointReader(open);
        r.ReadHeader();
        var e = Assert.Throws<CheckpointStreamException>(() => r.ReadEpoch());
        Assert.Equal(CheckpointStreamError.ChecksumMismatch, e.Error);
        Assert.Contains("corrupt record header", e.Message);
        Assert.False(open.Starved); // it never asked for a byte past the stream's end
    }

    [Fact]
    public void A_version_1_stream_keeps_8_byte_headers_and_a_grown_length_reads_as_truncated_as_before()
    {
        var bytes = Written(1);
        Assert.Null(ReadAll(bytes));
        var records = StreamTestExtensions.Records(bytes);
        Assert.Equal(RecordType.End, records[^1].Type);
        Assert.Equal(bytes.Length, records[^1].Offset + 8);
        var (at, type, length) = records[0];
        Assert.Equal(RecordType.PageData, type);
        // In version 1 the next record follows the body at 8 + length + padding: no check word.
        Assert.Equal(records[1].Offset, at + 8 + length + StreamFormat.PaddingFor(length));
        bytes[at + 5] ^= 0x60;
        Assert.Equal(CheckpointStreamError.Truncated, ReadAll(bytes)!.Error);
    }

    /// <summary>A stream that serves its bytes, then blocks as a live connection would: a reader asking for more is starved (the test records it and fails the read instead of hanging).</summary>
    private sealed class NeverEndingStream(byte[] bytes) : System.IO.Stream
    {
        private int _at;
        public bool Starved { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_at >= bytes.Length)
            {
                Starved = true;
                throw new IOException("starved: the reader waits for bytes a live connection would never send");
            }
            int n = Math.Min(buffer.Length, bytes.Length - _at);
            bytes.AsSpan(_at, n).CopyTo(buffer);
            _at += n;
            return n;
        }
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
