using System.Buffers.Binary;
using System.Text;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// One decoded operation of a VOLUME_OPS body. Which fields mean something depends on <see cref="Kind"/> (the
/// appendix of docs/stream-format.md): <see cref="Path"/> always (but RESET); <see cref="Other"/> is RENAME's and
/// LINK's second path and SYMLINK's target; <see cref="A"/>/<see cref="B"/> the numbers (offset, size, length, times);
/// <see cref="Mode"/> a mode or RENAME's flags; <see cref="Data"/> WRITE's bytes as carried (LZ4 when
/// <see cref="Compressed"/>) or DIR's names.
/// </summary>
internal readonly ref struct VolumeOp
{
    public VolumeOpKind Kind { get; init; }
    public int Volume { get; init; }
    public ushort Flags { get; init; }
    public string Path { get; init; }
    public string Other { get; init; }
    public long A { get; init; }
    public long B { get; init; }
    public long C { get; init; }
    public uint Mode { get; init; }
    public int RawLength { get; init; }
    public int NameCount { get; init; }
    public ReadOnlySpan<byte> Data { get; init; }

    public bool Compressed => Kind == VolumeOpKind.Write && (Flags & VolumeOpsFormat.FlagLz4) != 0;
    public bool More => Kind == VolumeOpKind.Dir && (Flags & VolumeOpsFormat.FlagMore) != 0;

    /// <summary>DIR's names, in order.</summary>
    public List<string> Names()
    {
        var names = new List<string>(NameCount);
        var d = Data;
        for (int i = 0; i < NameCount; i++)
        {
            int n = BinaryPrimitives.ReadUInt16LittleEndian(d);
            names.Add(Encoding.UTF8.GetString(d.Slice(2, n)));
            d = d[(2 + n)..];
        }
        return names;
    }
}

/// <summary>
/// Reads a VOLUME_OPS body op by op, checking everything a receiver needs before it touches its disk: framing, every
/// length against what is left before anything is sized from it, canonical paths, known ops and flags, value ranges,
/// the volume index. Bad bodies throw <see cref="InvalidDataException"/>.
/// </summary>
internal ref struct VolumeOpReader
{
    private ReadOnlySpan<byte> _rest;
    private readonly int _volumes;
    private int _left;

    /// <param name="volumes">How many volumes the receiver has (an op's index must be below).</param>
    public VolumeOpReader(ReadOnlySpan<byte> body, int volumes)
    {
        if (body.Length > IVolumeReplica.MaxBatchBytes) throw Bad($"body of {body.Length} bytes exceeds the bound");
        if (body.Length < VolumeOpsFormat.BodyHeaderBytes) throw Bad("body shorter than its header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(body);
        if (version != VolumeOpsFormat.Version) throw Bad($"unknown VOLUME_OPS version {version}");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        if (count > (uint)((body.Length - VolumeOpsFormat.BodyHeaderBytes) / VolumeOpsFormat.OpHeaderBytes))
            throw Bad($"op count {count} cannot fit the body");
        _left = (int)count;
        _rest = body[VolumeOpsFormat.BodyHeaderBytes..];
        _volumes = volumes;
    }

    /// <summary>The next op, or false at the end (which must also be the end of the body).</summary>
    public bool Next(out VolumeOp op)
    {
        if (_left == 0)
        {
            if (!_rest.IsEmpty) throw Bad($"{_rest.Length} bytes after the last op");
            op = default;
            return false;
        }
        if (_rest.Length < VolumeOpsFormat.OpHeaderBytes) throw Bad("op header truncated");
        var kind = (VolumeOpKind)_rest[0];
        int volume = _rest[1];
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_rest[4..]);
        if (length > (uint)(_rest.Length - VolumeOpsFormat.OpHeaderBytes)) throw Bad($"op length {length} beyond the body");
        if (volume >= _volumes) throw Bad($"volume index {volume} (the domain has {_volumes})");
        var f = _rest.Slice(VolumeOpsFormat.OpHeaderBytes, (int)length);
        _rest = _rest[(VolumeOpsFormat.OpHeaderBytes + (int)length)..];
        _left--;
        op = Decode(kind, volume, flags, f);
        return true;
    }

    private static VolumeOp Decode(VolumeOpKind kind, int volume, ushort flags, ReadOnlySpan<byte> f)
    {
        ushort allowedFlags = kind switch
        {
            VolumeOpKind.Write => VolumeOpsFormat.FlagLz4,
            VolumeOpKind.Dir => VolumeOpsFormat.FlagMore,
            _ => 0,
        };
        if ((flags & ~allowedFlags) != 0) throw Bad($"unknown flags 0x{flags:x} on {kind}");
        VolumeOp op;
        string path = "", other = "";
        switch (kind)
        {
            case VolumeOpKind.Reset:
                op = new VolumeOp { Kind = kind, Volume = volume, Path = "", Other = "" };
                break;
            case VolumeOpKind.Create or VolumeOpKind.Mkdir:
                path = TakePath(ref f, false);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", Mode = TakeMode(ref f) };
                break;
            case VolumeOpKind.Chmod:
                path = TakePath(ref f, true);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", Mode = TakeMode(ref f) };
                break;
            case VolumeOpKind.Write:
            {
                path = TakePath(ref f, false);
                long offset = TakeSize(ref f);
                int raw = (int)TakeU32(ref f, VolumeOpsFormat.MaxWriteBytes);
                if (raw == 0) throw Bad("empty WRITE");
                if ((flags & VolumeOpsFormat.FlagLz4) == 0 ? f.Length != raw : f.Length == 0 || f.Length >= raw)
                    throw Bad($"WRITE data of {f.Length} bytes for {raw}");
                if (offset > VolumeOpsFormat.MaxFileBytes - raw) throw Bad("WRITE beyond the largest file");
                op = new VolumeOp { Kind = kind, Volume = volume, Flags = flags, Path = path, Other = "", A = offset, RawLength = raw, Data = f };
                f = default;
                break;
            }
            case VolumeOpKind.Truncate:
                path = TakePath(ref f, false);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", A = TakeSize(ref f) };
                break;
            case VolumeOpKind.Fallocate:
            {
                path = TakePath(ref f, false);
                long offset = TakeSize(ref f), length = TakeSize(ref f);
                if (length == 0 || offset > VolumeOpsFormat.MaxFileBytes - length) throw Bad("FALLOCATE range");
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", A = offset, B = length };
                break;
            }
            case VolumeOpKind.Rmdir or VolumeOpKind.Unlink or VolumeOpKind.Absent:
                op = new VolumeOp { Kind = kind, Volume = volume, Path = TakePath(ref f, false), Other = "" };
                break;
            case VolumeOpKind.Rename:
            {
                other = TakePath(ref f, false);
                path = TakePath(ref f, false);
                uint rf = TakeU32(ref f, 2);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = other, Other = path, Mode = rf };
                break;
            }
            case VolumeOpKind.Link:
                other = TakePath(ref f, false);
                path = TakePath(ref f, false);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = other };
                break;
            case VolumeOpKind.Symlink:
                other = TakeTarget(ref f);
                path = TakePath(ref f, false);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = other };
                break;
            case VolumeOpKind.Utimes:
                path = TakePath(ref f, true);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", A = TakeI64(ref f), B = TakeI64(ref f) };
                break;
            case VolumeOpKind.File:
            {
                path = TakePath(ref f, false);
                uint mode = TakeMode(ref f);
                long size = TakeSize(ref f);
                op = new VolumeOp { Kind = kind, Volume = volume, Path = path, Other = "", Mode = mode, A = size, B = TakeI64(ref f), C = TakeI64(ref f) };
                break;
            }
            case VolumeOpKind.Dir:
            {
                path = TakePath(ref f, true);
                uint mode = TakeMode(ref f);
                uint count = TakeU32(ref f, uint.MaxValue);
                if (count > (uint)(f.Length / 3)) throw Bad($"DIR listing of {count} names cannot fit");
                var names = f;
                for (uint i = 0; i < count; i++)
                {
                    if (f.Length < 2) throw Bad("DIR name truncated");
                    int n = BinaryPrimitives.ReadUInt16LittleEndian(f);
                    if (n > f.Length - 2) throw Bad("DIR name truncated");
                    if (!VolumePath.IsName(f.Slice(2, n)) || !System.Text.Unicode.Utf8.IsValid(f.Slice(2, n)))
                        throw Bad("DIR name not a file name");
                    f = f[(2 + n)..];
                }
                op = new VolumeOp { Kind = kind, Volume = volume, Flags = flags, Path = path, Other = "", Mode = mode, NameCount = (int)count, Data = names[..(names.Length - f.Length)] };
                break;
            }
            default:
                throw Bad($"unknown volume op {(byte)kind}");
        }
        if (!f.IsEmpty) throw Bad($"{f.Length} bytes left in a {kind} op");
        return op;
    }

    private static string TakePath(ref ReadOnlySpan<byte> f, bool allowRoot)
    {
        var s = TakeString(ref f, VolumeOpsFormat.MaxPathBytes);
        if (!VolumePath.IsCanonical(s, allowRoot)) throw Bad("a path that is not canonical (empty, absolute, '.', '..', NUL or not UTF-8)");
        return Encoding.UTF8.GetString(s);
    }

    private static string TakeTarget(ref ReadOnlySpan<byte> f)
    {
        var s = TakeString(ref f, VolumeOpsFormat.MaxTargetBytes);
        if (s.Length == 0 || s.IndexOf((byte)0) >= 0 || !System.Text.Unicode.Utf8.IsValid(s)) throw Bad("bad symlink target");
        return Encoding.UTF8.GetString(s);
    }

    private static ReadOnlySpan<byte> TakeString(ref ReadOnlySpan<byte> f, int max)
    {
        if (f.Length < 2) throw Bad("string length truncated");
        int n = BinaryPrimitives.ReadUInt16LittleEndian(f);
        if (n > max) throw Bad($"string of {n} bytes (at most {max})");
        if (n > f.Length - 2) throw Bad("string beyond its op");
        var s = f.Slice(2, n);
        f = f[(2 + n)..];
        return s;
    }

    private static uint TakeU32(ref ReadOnlySpan<byte> f, uint max)
    {
        if (f.Length < 4) throw Bad("field truncated");
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(f);
        f = f[4..];
        if (v > max) throw Bad($"value {v} out of range");
        return v;
    }

    private static uint TakeMode(ref ReadOnlySpan<byte> f)
    {
        uint m = TakeU32(ref f, uint.MaxValue);
        if ((m & ~VolumeOpsFormat.ModeMask) != 0) throw Bad($"mode 0{Convert.ToString(m, 8)} has bits beyond 07777");
        return m;
    }

    private static long TakeI64(ref ReadOnlySpan<byte> f)
    {
        if (f.Length < 8) throw Bad("field truncated");
        long v = BinaryPrimitives.ReadInt64LittleEndian(f);
        f = f[8..];
        return v;
    }

    private static long TakeSize(ref ReadOnlySpan<byte> f)
    {
        long v = TakeI64(ref f);
        if (v < 0) throw Bad("negative size or offset");
        return v;
    }

    internal static InvalidDataException Bad(string why) => new($"VOLUME_OPS: {why}");
}
