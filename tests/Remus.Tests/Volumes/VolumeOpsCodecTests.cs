using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox.Volumes;
using Xunit;

namespace Remus.Tests.Volumes;

/// <summary>The VOLUME_OPS body format (docs/stream-format.md, appendix): round trips, bounds, hostile bodies.</summary>
public sealed class VolumeOpsCodecTests
{
    private static List<byte[]> Bodies(Action<VolumeBatchWriter> write)
    {
        var w = new VolumeBatchWriter();
        write(w);
        var bodies = new List<byte[]>();
        w.Drain(b => bodies.Add(b.ToArray()));
        return bodies;
    }

    private static byte[] OneBody(Action<VolumeBatchWriter> write) => Assert.Single(Bodies(write));

    [Fact]
    public void Every_op_reads_back_as_written()
    {
        var names = new List<string> { "a", "é", "x y" };
        byte[] body = OneBody(w =>
        {
            w.Create(1, "d/f", 0x1A4);
            w.Write(1, "d/f", 5, "hello"u8);
            w.Truncate(1, "d/f", 77);
            w.Fallocate(1, "d/f", 4096, 8192);
            w.Mkdir(0, "d", 0x1ED);
            w.Rmdir(0, "d");
            w.Unlink(0, "d/f");
            w.Rename(0, "a/b", "c", 2);
            w.Link(0, "a/b", "a/c");
            w.Symlink(0, "../../etc/passwd", "ln");
            w.Chmod(0, "", 0x9ED);
            w.Utimes(0, "a", -5, 1_700_000_000_123_456_789);
            w.Reset(1);
            w.File(1, "big", 0x180, 1L << 40, 1, 2);
            w.Dir(1, "", 0x1C0, names);
            w.Absent(1, "gone/deep");
        });
        Assert.Equal(VolumeOpsFormat.Version, BinaryPrimitives.ReadUInt32LittleEndian(body));
        Assert.Equal(16, BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(4)));

        var r = new VolumeOpReader(body, 2);
        VolumeOp op;
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Create, 1, "d/f", 0x1A4u), (op.Kind, op.Volume, op.Path, op.Mode));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Write, "d/f", 5L, 5), (op.Kind, op.Path, op.A, op.RawLength));
        Assert.False(op.Compressed); Assert.Equal("hello", Encoding.ASCII.GetString(op.Data));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Truncate, 77L), (op.Kind, op.A));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Fallocate, 4096L, 8192L), (op.Kind, op.A, op.B));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Mkdir, 0, "d", 0x1EDu), (op.Kind, op.Volume, op.Path, op.Mode));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Rmdir, "d"), (op.Kind, op.Path));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Unlink, "d/f"), (op.Kind, op.Path));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Rename, "a/b", "c", 2u), (op.Kind, op.Path, op.Other, op.Mode));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Link, "a/c", "a/b"), (op.Kind, op.Path, op.Other));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Symlink, "ln", "../../etc/passwd"), (op.Kind, op.Path, op.Other));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Chmod, "", 0x9EDu), (op.Kind, op.Path, op.Mode));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Utimes, -5L, 1_700_000_000_123_456_789L), (op.Kind, op.A, op.B));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Reset, 1), (op.Kind, op.Volume));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.File, "big", 0x180u, 1L << 40, 1L, 2L), (op.Kind, op.Path, op.Mode, op.A, op.B, op.C));
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Dir, "", 0x1C0u, false), (op.Kind, op.Path, op.Mode, op.More));
        Assert.Equal(names, op.Names());
        Assert.True(r.Next(out op)); Assert.Equal((VolumeOpKind.Absent, "gone/deep"), (op.Kind, op.Path));
        Assert.False(r.Next(out _));
    }

    [Fact]
    public void Writes_are_split_at_one_MiB_compressed_when_that_helps_and_bodies_stay_within_the_bound()
    {
        byte[] text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("the same line again\n", 300_000)));  // 6 MB
        byte[] noise = new byte[(5 << 20) + 5];
        new Random(3).NextBytes(noise);
        var bodies = Bodies(w => { w.Write(0, "t", 100, text); w.Write(0, "n", 0, noise); });

        var back = new Dictionary<string, MemoryStream> { ["t"] = new(), ["n"] = new() };
        long expectOffsetT = 100;
        int compressed = 0, raw = 0;
        foreach (var body in bodies)
        {
            Assert.True(body.Length <= IVolumeReplica.MaxBatchBytes);
            var r = new VolumeOpReader(body, 1);
            while (r.Next(out var op))
            {
                Assert.Equal(VolumeOpKind.Write, op.Kind);
                Assert.True(op.RawLength <= VolumeOpsFormat.MaxWriteBytes);
                byte[] data = new byte[op.RawLength];
                if (op.Compressed) { compressed++; Assert.Equal(op.RawLength, K4os.Compression.LZ4.LZ4Codec.Decode(op.Data, data)); }
                else { raw++; op.Data.CopyTo(data); }
                if (op.Path == "t") { Assert.Equal(expectOffsetT, op.A); expectOffsetT += op.RawLength; }
                back[op.Path].Write(data);
            }
        }
        Assert.True(bodies.Count >= 2);
        Assert.Equal(text, back["t"].ToArray());
        Assert.Equal(noise, back["n"].ToArray());
        Assert.True(compressed >= 6, $"{compressed} compressed");
        Assert.True(raw >= 6, $"{raw} raw");
    }

    [Fact]
    public void A_listing_too_long_for_one_op_is_continued()
    {
        var names = Enumerable.Range(0, 40_000).Select(i => $"a-rather-long-file-name-number-{i:D8}.dat").ToList();
        var ops = new List<(bool More, List<string> Names)>();
        foreach (var body in Bodies(w => w.Dir(0, "d", 0x1ED, names)))
        {
            var r = new VolumeOpReader(body, 1);
            while (r.Next(out var op)) ops.Add((op.More, op.Names()));
        }
        Assert.True(ops.Count > 1);
        Assert.All(ops[..^1], o => Assert.True(o.More));
        Assert.False(ops[^1].More);
        Assert.Equal(names, ops.SelectMany(o => o.Names));
    }

    public static IEnumerable<object[]> HostilePaths() =>
        new[] { "../x", "/etc/passwd", "a//b", "a/./b", "a/../../b", "a/", "..", ".", "", "a\0b", new string('n', 256), string.Join('/', Enumerable.Repeat("abcdefg", 600)) }
            .Select(p => new object[] { p });

    [Theory]
    [MemberData(nameof(HostilePaths))]
    public void A_path_that_is_not_canonical_is_refused(string path)
    {
        foreach (var body in new[]
                 {
                     OneBody(w => w.Create(0, path, 0x1A4)),
                     OneBody(w => w.Write(0, path, 0, "x"u8)),
                     OneBody(w => w.Rename(0, "ok", path, 0)),
                     OneBody(w => w.Link(0, path, "ok")),
                     OneBody(w => w.Absent(0, path)),
                     OneBody(w => w.File(0, path, 0x1A4, 1, 0, 0)),
                 })
            Assert.Throws<InvalidDataException>(() => Validate(body, 1));
        var dir = OneBody(w => w.Dir(0, "", 0x1ED, [path]));
        Assert.Throws<InvalidDataException>(() => Validate(dir, 1));
    }

    [Fact]
    public void Broken_framing_and_values_are_refused_before_anything_is_sized_from_them()
    {
        byte[] good = OneBody(w => { w.Create(0, "f", 0x1A4); w.Write(0, "f", 0, new byte[300]); });
        Validate(good, 1);

        Assert.Throws<InvalidDataException>(() => Validate(good.AsSpan(0, 4).ToArray(), 1));                       // short header
        for (int cut = 8; cut < good.Length; cut += 7) Assert.Throws<InvalidDataException>(() => Validate(good.AsSpan(0, cut).ToArray(), 1));
        Assert.Throws<InvalidDataException>(() => Validate([.. good, 0], 1));                                      // trailing byte
        Assert.Throws<InvalidDataException>(() => Validate(Patch(good, 0, 2u), 1));                               // version
        Assert.Throws<InvalidDataException>(() => Validate(Patch(good, 4, uint.MaxValue), 1));                    // op count
        Assert.Throws<InvalidDataException>(() => Validate(Patch(good, 4, 1u), 1));                               // fewer ops than bytes
        Assert.Throws<InvalidDataException>(() => Validate(Patch(good, 12, 0x7FFFFFF0u), 1));                     // op length
        Assert.Throws<InvalidDataException>(() => Validate(good, 0));                                              // volume index
        byte[] op = (byte[])good.Clone(); op[8] = 99;
        Assert.Throws<InvalidDataException>(() => Validate(op, 1));                                                // unknown op
        byte[] flags = (byte[])good.Clone(); flags[10] = 1;
        Assert.Throws<InvalidDataException>(() => Validate(flags, 1));                                             // flag on CREATE
        Assert.Throws<InvalidDataException>(() => Validate(OneBody(w => w.Create(0, "f", 0x10000 | 0x1A4)), 1));  // mode beyond 07777
        Assert.Throws<InvalidDataException>(() => Validate(OneBody(w => w.Truncate(0, "f", -1)), 1));
        Assert.Throws<InvalidDataException>(() => Validate(OneBody(w => w.Fallocate(0, "f", long.MaxValue - 5, 10)), 1));
        Assert.Throws<InvalidDataException>(() => Validate(OneBody(w => w.Write(0, "f", long.MaxValue - 2, "abc"u8)), 1));
        Assert.Throws<InvalidDataException>(() => Validate(OneBody(w => w.Rename(0, "a", "b", 3)), 1));

        byte[] tooBig = new byte[IVolumeReplica.MaxBatchBytes + 1];
        BinaryPrimitives.WriteUInt32LittleEndian(tooBig, VolumeOpsFormat.Version);
        Assert.Throws<InvalidDataException>(() => Validate(tooBig, 1));
    }

    [Fact]
    public void A_listing_count_larger_than_its_bytes_is_refused()
    {
        byte[] body = OneBody(w => w.Dir(0, "d", 0x1ED, ["a", "b"]));
        // path "d" = 2+1 bytes, mode 4, then the count at 8 (body header) + 8 (op header) + 3 + 4.
        Assert.Throws<InvalidDataException>(() => Validate(Patch(body, 8 + 8 + 3 + 4, 1_000_000u), 1));
    }

    private static void Validate(byte[] body, int volumes)
    {
        var r = new VolumeOpReader(body, volumes);
        while (r.Next(out _)) { }
    }

    private static byte[] Patch(byte[] body, int offset, uint value)
    {
        byte[] b = (byte[])body.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(offset), value);
        return b;
    }
}
