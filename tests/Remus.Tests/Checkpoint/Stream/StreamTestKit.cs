using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

/// <summary>A guest memory image: the sender's source and the receiver's sink.</summary>
internal sealed class MemoryImage : IPageSource, IPageSink
{
    public const int P = StreamFormat.PageSize;

    public MemoryImage(int pages) => Bytes = new byte[pages * P];

    public MemoryImage(byte[] bytes) => Bytes = bytes;

    public byte[] Bytes { get; }

    public int Pages => Bytes.Length / P;

    public ulong PageCount => (ulong)Pages;

    public Span<byte> Page(int pfn) => Bytes.AsSpan(pfn * P, P);

    ReadOnlySpan<byte> IPageSource.GetPage(ulong pfn) => Page((int)pfn);

    Span<byte> IPageSink.GetPage(ulong pfn) => Page((int)pfn);

    public byte[] Snapshot() => (byte[])Bytes.Clone();
}

/// <summary>Realistic page contents from a seeded generator.</summary>
internal sealed class PageFactory(int seed)
{
    private const int P = StreamFormat.PageSize;
    private static readonly string[] Words =
        "the of and to in is that for it as was with checkpoint epoch page memory backup primary state kernel stream 0 1 42".Split(' ');

    public Random Rng { get; } = new(seed);

    public void Random(Span<byte> page) => Rng.NextBytes(page);

    public void Text(Span<byte> page)
    {
        int at = 0;
        while (at < P)
        {
            string w = Words[Rng.Next(Words.Length)] + (Rng.Next(9) == 0 ? "\n" : " ");
            for (int i = 0; i < w.Length && at < P; i++) page[at++] = (byte)w[i];
        }
    }

    public void Heap(Span<byte> page)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(page);
        for (int i = 0; i < words.Length; i++)
            words[i] = Rng.Next(4) switch
            {
                0 => 0x5555_5560_0000UL + (ulong)Rng.Next(1 << 20) * 16,
                1 => (ulong)Rng.Next(1000),
                _ => 0,
            };
    }

    /// <summary>Fills a page with one of the kinds (zero, random, text, heap).</summary>
    public void Any(Span<byte> page)
    {
        switch (Rng.Next(4))
        {
            case 0: page.Clear(); break;
            case 1: Random(page); break;
            case 2: Text(page); break;
            default: Heap(page); break;
        }
    }

    /// <summary>Changes a page the way a running program does: a few words, a rewrite, zeroing, or nothing.</summary>
    public void Mutate(Span<byte> page)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(page);
        switch (Rng.Next(6))
        {
            case 0: case 1: case 2:
                for (int k = Rng.Next(1, 6); k > 0; k--) words[Rng.Next(words.Length)] += (ulong)Rng.Next(1, 1 << 30);
                break;
            case 3: Any(page); break;
            case 4: page.Clear(); break;
            default: break; // written with the same values: dirty but unchanged
        }
    }

    public byte[] Blob(int length)
    {
        var b = new byte[length];
        Rng.NextBytes(b);
        return b;
    }
}

/// <summary>A non-seekable stream that returns at most a few bytes per read, like a socket under load.</summary>
internal sealed class TrickleStream(System.IO.Stream inner, int maxChunk, int seed = 1) : System.IO.Stream
{
    private readonly Random _rng = new(seed);

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public int Reads { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        Reads++;
        if (buffer.IsEmpty) return 0;
        return inner.Read(buffer[..Math.Min(buffer.Length, _rng.Next(1, maxChunk + 1))]);
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Flush() => inner.Flush();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// An independent encoder of the format as docs/stream-format.md specifies it, for crafting streams that the
/// writer would never produce (bad fields with valid checksums, unknown records, ...).
/// </summary>
internal sealed class RawStreamBuilder
{
    private readonly MemoryStream _out = new();
    private readonly XxHash3 _hash = new();

    public static byte[] Header(uint version = 1, uint pageSize = 4096, uint arch = 62, uint flags = 0,
        byte[]? config = null, uint reserved = 0, bool corruptChecksum = false)
    {
        config ??= "{\"name\":\"t\"}"u8.ToArray();
        int pad = (8 - config.Length % 8) % 8;
        var h = new byte[32 + config.Length + pad + 8];
        "REMUSCKP"u8.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), version);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), pageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), arch);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), (uint)config.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(28), reserved);
        config.CopyTo(h, 32);
        ulong sum = XxHash3.HashToUInt64(h.AsSpan(0, h.Length - 8));
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(h.Length - 8), corruptChecksum ? ~sum : sum);
        return h;
    }

    private readonly int _headerSize;

    public RawStreamBuilder(byte[]? header = null)
    {
        header ??= Header();
        _out.Write(header);
        // Version 2: every record header is type, length, XXH32 of those 8 bytes, reserved zero (16 bytes). No
        // stream header (the back channel): 8-byte frames.
        _headerSize = header.Length >= 12 && BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)) >= 2 ? 16 : 8;
    }

    /// <summary>The size of a record header in this stream (8 in version 1, 16 in version 2).</summary>
    public int RecordHeaderSize => _headerSize;

    /// <summary>A record header of this stream's version.</summary>
    public byte[] RecordHeader(uint type, uint length)
    {
        var h = new byte[_headerSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), length);
        if (_headerSize == 16) BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), XxHash32.HashToUInt32(h.AsSpan(0, 8)));
        return h;
    }

    /// <summary>Appends a record: header, body, zero padding (or <paramref name="padByte"/>); counted in the epoch hash.</summary>
    public RawStreamBuilder Record(uint type, ReadOnlySpan<byte> body, uint? length = null, byte padByte = 0)
    {
        int h = _headerSize;
        var rec = new byte[h + body.Length + (8 - body.Length % 8) % 8];
        RecordHeader(type, length ?? (uint)body.Length).CopyTo(rec, 0);
        body.CopyTo(rec.AsSpan(h));
        rec.AsSpan(h + body.Length).Fill(padByte);
        _hash.Append(rec);
        _out.Write(rec);
        return this;
    }

    public RawStreamBuilder Record(RecordType type, ReadOnlySpan<byte> body) => Record((uint)type, body);

    public RawStreamBuilder Heartbeat(ulong unixNanoseconds)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, unixNanoseconds);
        return Record(RecordType.Heartbeat, b);
    }

    public RawStreamBuilder VcpuState(uint id, byte[] state, uint reserved = 0)
    {
        var body = new byte[8 + state.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(body, id);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), reserved);
        state.CopyTo(body, 8);
        return Record(RecordType.VcpuState, body);
    }

    /// <summary>CHECKPOINT_END with the right checksum (or a wrong one).</summary>
    public RawStreamBuilder CheckpointEnd(ulong epoch, bool corruptChecksum = false)
    {
        int h = _headerSize;
        var rec = new byte[h + 16];
        RecordHeader((uint)RecordType.CheckpointEnd, 16).CopyTo(rec, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(h), epoch);
        _hash.Append(rec.AsSpan(0, h + 8));
        ulong sum = _hash.GetCurrentHashAsUInt64();
        _hash.Reset();
        BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(h + 8), corruptChecksum ? sum ^ 1 : sum);
        _out.Write(rec);
        return this;
    }

    public RawStreamBuilder End()
    {
        _out.Write(RecordHeader((uint)RecordType.End, 0));
        return this;
    }

    public RawStreamBuilder Bytes(ReadOnlySpan<byte> raw)
    {
        _out.Write(raw);
        return this;
    }

    public byte[] ToArray() => _out.ToArray();

    /// <summary>A PAGE_DATA body: count, reserved, descriptors (pfn | encoding &lt;&lt; 60), lengths, data.</summary>
    public static byte[] PageData(params (ulong Pfn, int Encoding, byte[] Data)[] pages) =>
        PageData(0, pages.Select(p => (p.Pfn | (ulong)p.Encoding << 60, (uint)p.Data.Length, p.Data)).ToArray());

    public static byte[] PageData(uint reserved, (ulong Info, uint Length, byte[] Data)[] pages)
    {
        var body = new MemoryStream();
        Span<byte> b8 = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(b8, (uint)pages.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b8[4..], reserved);
        body.Write(b8);
        foreach (var p in pages) { BinaryPrimitives.WriteUInt64LittleEndian(b8, p.Info); body.Write(b8); }
        foreach (var p in pages) { BinaryPrimitives.WriteUInt32LittleEndian(b8, p.Length); body.Write(b8[..4]); }
        foreach (var p in pages) body.Write(p.Data);
        return body.ToArray();
    }
}

internal static class StreamTestExtensions
{
    public static CheckpointStreamException Refused(Func<object?> read)
    {
        var e = Assert.Throws<CheckpointStreamException>(() => { read(); });
        return e;
    }

    /// <summary>Walks the records of a well-formed stream: offset, type and body length of each.</summary>
    public static List<(int Offset, RecordType Type, int Length)> Records(byte[] stream)
    {
        var header = new CheckpointReader(new MemoryStream(stream)).ReadHeader();
        int at = header.EncodedLength, h = header.Version >= 2 ? 16 : 8;
        var list = new List<(int, RecordType, int)>();
        while (at < stream.Length)
        {
            var type = (RecordType)BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(at + 4));
            list.Add((at, type, length));
            at += h + length + (8 - length % 8) % 8;
        }
        return list;
    }

    public static CheckpointReader OpenReader(byte[] stream, CheckpointReaderOptions? options = null)
    {
        var r = new CheckpointReader(new MemoryStream(stream, writable: false), options);
        r.ReadHeader();
        return r;
    }
}
