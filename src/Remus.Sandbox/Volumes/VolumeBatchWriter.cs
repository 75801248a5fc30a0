using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using K4os.Compression.LZ4;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// Encodes volume operations into VOLUME_OPS bodies (docs/stream-format.md, appendix "VOLUME_OPS body"), each at most
/// <see cref="IVolumeReplica.MaxBatchBytes"/>, in pooled buffers that grow as needed. Finished bodies wait until
/// <see cref="Drain"/> hands them over (and returns their buffers). Not thread-safe.
/// </summary>
internal sealed class VolumeBatchWriter
{
    private const int FirstBufferBytes = 64 << 10;

    private readonly List<(byte[] Buffer, int Length)> _done = [];
    private byte[]? _buf;
    private int _pos, _count, _opStart;

    /// <summary>Bodies finished and waiting for <see cref="Drain"/> (the one being filled not counted).</summary>
    public int Finished => _done.Count;

    /// <summary>Bytes held (finished bodies and the one being filled).</summary>
    public long PendingBytes
    {
        get { long n = _count > 0 ? _pos : 0; foreach (var d in _done) n += d.Length; return n; }
    }

    public bool IsEmpty => _done.Count == 0 && _count == 0;

    public void Create(int volume, string path, uint mode)
    {
        var w = Begin(VolumeOpKind.Create, volume, 0, PathBytes(path) + 4);
        w = PutPath(w, path); PutU32(w, mode);
        End(PathBytes(path) + 4);
    }

    /// <summary>One WRITE per 1 MiB of <paramref name="data"/>, each LZ4-compressed when that makes it smaller.</summary>
    public void Write(int volume, string path, long offset, ReadOnlySpan<byte> data)
    {
        int pathBytes = PathBytes(path);
        do
        {
            var chunk = data[..Math.Min(data.Length, VolumeOpsFormat.MaxWriteBytes)];
            int fixedBytes = pathBytes + 12;
            var w = Begin(VolumeOpKind.Write, volume, 0, fixedBytes + LZ4Codec.MaximumOutputSize(chunk.Length));
            w = PutPath(w, path);
            BinaryPrimitives.WriteInt64LittleEndian(w, offset);
            BinaryPrimitives.WriteInt32LittleEndian(w[8..], chunk.Length);
            var dst = w[12..];
            int packed = chunk.Length >= 64 ? LZ4Codec.Encode(chunk, dst, LZ4Level.L00_FAST) : -1;
            if (packed > 0 && packed < chunk.Length)
            {
                SetFlags(VolumeOpsFormat.FlagLz4);
                End(fixedBytes + packed);
            }
            else
            {
                chunk.CopyTo(dst);
                End(fixedBytes + chunk.Length);
            }
            offset += chunk.Length;
            data = data[chunk.Length..];
        } while (!data.IsEmpty);
    }

    public void Truncate(int volume, string path, long size) => PathAnd(VolumeOpKind.Truncate, volume, path, size);

    public void Fallocate(int volume, string path, long offset, long length)
    {
        int n = PathBytes(path) + 16;
        var w = PutPath(Begin(VolumeOpKind.Fallocate, volume, 0, n), path);
        BinaryPrimitives.WriteInt64LittleEndian(w, offset);
        BinaryPrimitives.WriteInt64LittleEndian(w[8..], length);
        End(n);
    }

    public void Mkdir(int volume, string path, uint mode) => PathAndMode(VolumeOpKind.Mkdir, volume, path, mode);
    public void Rmdir(int volume, string path) => PathOnly(VolumeOpKind.Rmdir, volume, path);
    public void Unlink(int volume, string path) => PathOnly(VolumeOpKind.Unlink, volume, path);
    public void Absent(int volume, string path) => PathOnly(VolumeOpKind.Absent, volume, path);

    public void Rename(int volume, string from, string to, uint flags)
    {
        int n = PathBytes(from) + PathBytes(to) + 4;
        var w = PutPath(PutPath(Begin(VolumeOpKind.Rename, volume, 0, n), from), to);
        PutU32(w, flags);
        End(n);
    }

    public void Link(int volume, string existing, string newPath)
    {
        int n = PathBytes(existing) + PathBytes(newPath);
        PutPath(PutPath(Begin(VolumeOpKind.Link, volume, 0, n), existing), newPath);
        End(n);
    }

    public void Symlink(int volume, string target, string path)
    {
        int n = PathBytes(target) + PathBytes(path);
        PutPath(PutPath(Begin(VolumeOpKind.Symlink, volume, 0, n), target), path);
        End(n);
    }

    public void Chmod(int volume, string path, uint mode) => PathAndMode(VolumeOpKind.Chmod, volume, path, mode);

    public void Utimes(int volume, string path, long atimeNs, long mtimeNs)
    {
        int n = PathBytes(path) + 16;
        var w = PutPath(Begin(VolumeOpKind.Utimes, volume, 0, n), path);
        BinaryPrimitives.WriteInt64LittleEndian(w, atimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(w[8..], mtimeNs);
        End(n);
    }

    public void Reset(int volume)
    {
        Begin(VolumeOpKind.Reset, volume, 0, 0);
        End(0);
    }

    public void File(int volume, string path, uint mode, long size, long atimeNs, long mtimeNs)
    {
        int n = PathBytes(path) + 28;
        var w = PutPath(Begin(VolumeOpKind.File, volume, 0, n), path);
        BinaryPrimitives.WriteUInt32LittleEndian(w, mode);
        BinaryPrimitives.WriteInt64LittleEndian(w[4..], size);
        BinaryPrimitives.WriteInt64LittleEndian(w[12..], atimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(w[20..], mtimeNs);
        End(n);
    }

    /// <summary>DIR ops for a directory and its listing, split over several (flag MORE) when the names are many.</summary>
    public void Dir(int volume, string path, uint mode, IReadOnlyList<string> names)
    {
        int pathBytes = PathBytes(path), i = 0;
        do
        {
            int n = pathBytes + 8, first = i;
            while (i < names.Count && n + PathBytes(names[i]) <= VolumeOpsFormat.MaxWriteBytes) n += PathBytes(names[i++]);
            var w = PutPath(Begin(VolumeOpKind.Dir, volume, 0, n), path);
            BinaryPrimitives.WriteUInt32LittleEndian(w, mode);
            BinaryPrimitives.WriteInt32LittleEndian(w[4..], i - first);
            w = w[8..];
            for (int k = first; k < i; k++) w = PutPath(w, names[k]);
            if (i < names.Count) SetFlags(VolumeOpsFormat.FlagMore);
            End(n);
        } while (i < names.Count);
    }

    /// <summary>Finishes the body being filled (if it has ops) so that the next op starts a new one.</summary>
    public void Flush()
    {
        if (_buf is null) return;
        if (_count == 0) return;
        BinaryPrimitives.WriteUInt32LittleEndian(_buf, VolumeOpsFormat.Version);
        BinaryPrimitives.WriteInt32LittleEndian(_buf.AsSpan(4), _count);
        _done.Add((_buf, _pos));
        _buf = null;
        _count = 0;
        _pos = 0;
    }

    /// <summary>Hands every body over in order (the one being filled too) and returns their buffers. Returns the bytes emitted.</summary>
    public long Drain(Action<ReadOnlySpan<byte>> emit)
    {
        Flush();
        long total = 0;
        try
        {
            foreach (var (buffer, length) in _done)
            {
                emit(buffer.AsSpan(0, length));
                total += length;
            }
        }
        finally { Clear(); }
        return total;
    }

    /// <summary>Hands over the bodies already finished (not the one being filled), for a copy that streams as it goes.</summary>
    public long DrainFinished(Action<ReadOnlySpan<byte>> emit)
    {
        long total = 0;
        while (_done.Count > 0)
        {
            var (buffer, length) = _done[0];
            _done.RemoveAt(0);
            try { emit(buffer.AsSpan(0, length)); }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
            total += length;
        }
        return total;
    }

    /// <summary>Drops everything held.</summary>
    public void Clear()
    {
        foreach (var (buffer, _) in _done) ArrayPool<byte>.Shared.Return(buffer);
        _done.Clear();
        if (_buf is not null) ArrayPool<byte>.Shared.Return(_buf);
        _buf = null;
        _pos = _count = 0;
    }

    private static int PathBytes(string s) => 2 + Encoding.UTF8.GetByteCount(s);

    private void PathOnly(VolumeOpKind kind, int volume, string path)
    {
        int n = PathBytes(path);
        PutPath(Begin(kind, volume, 0, n), path);
        End(n);
    }

    private void PathAndMode(VolumeOpKind kind, int volume, string path, uint mode)
    {
        int n = PathBytes(path) + 4;
        PutU32(PutPath(Begin(kind, volume, 0, n), path), mode);
        End(n);
    }

    private void PathAnd(VolumeOpKind kind, int volume, string path, long value)
    {
        int n = PathBytes(path) + 8;
        BinaryPrimitives.WriteInt64LittleEndian(PutPath(Begin(kind, volume, 0, n), path), value);
        End(n);
    }

    private static void PutU32(Span<byte> w, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(w, v);

    private static Span<byte> PutPath(Span<byte> w, string s)
    {
        int n = Encoding.UTF8.GetBytes(s, w[2..]);
        if (n > ushort.MaxValue) throw new ArgumentException("path too long", nameof(s));
        BinaryPrimitives.WriteUInt16LittleEndian(w, (ushort)n);
        return w[(2 + n)..];
    }

    /// <summary>Starts an op whose fields take at most <paramref name="maxFieldBytes"/>; returns the space for them.</summary>
    private Span<byte> Begin(VolumeOpKind kind, int volume, ushort flags, int maxFieldBytes)
    {
        if ((uint)volume > byte.MaxValue) throw new ArgumentOutOfRangeException(nameof(volume));
        int need = VolumeOpsFormat.OpHeaderBytes + maxFieldBytes;
        if (VolumeOpsFormat.BodyHeaderBytes + need > IVolumeReplica.MaxBatchBytes)
            throw new ArgumentException("a volume operation larger than a batch");
        if (_buf is not null && _pos + need > IVolumeReplica.MaxBatchBytes) Flush();
        if (_buf is null)
        {
            _buf = ArrayPool<byte>.Shared.Rent(Math.Max(FirstBufferBytes, VolumeOpsFormat.BodyHeaderBytes + need));
            _pos = VolumeOpsFormat.BodyHeaderBytes;
        }
        else if (_pos + need > _buf.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(IVolumeReplica.MaxBatchBytes, Math.Max(_buf.Length * 2, _pos + need)));
            _buf.AsSpan(0, _pos).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = bigger;
        }
        _opStart = _pos;
        var h = _buf.AsSpan(_pos, VolumeOpsFormat.OpHeaderBytes);
        h[0] = (byte)kind;
        h[1] = (byte)volume;
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], flags);
        return _buf.AsSpan(_pos + VolumeOpsFormat.OpHeaderBytes, maxFieldBytes);
    }

    private void SetFlags(ushort flags) => BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_opStart + 2), flags);

    private void End(int fieldBytes)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buf.AsSpan(_opStart + 4), fieldBytes);
        _pos = _opStart + VolumeOpsFormat.OpHeaderBytes + fieldBytes;
        _count++;
    }
}
