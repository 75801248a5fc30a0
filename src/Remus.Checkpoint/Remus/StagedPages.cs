using System.Buffers;
using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// The dirty pages of one epoch, copied out of guest memory while the domain is suspended (a memcpy each) so the
/// domain can resume at once and the encoding and sending happen while it runs (the seed's "postcopy").
/// The buffer is pooled and reused from epoch to epoch.
/// </summary>
internal sealed class StagedPages : IPageSource, IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
    private ulong[] _pfns = [];
    private int _count;

    /// <summary>The staged pages, in ascending order.</summary>
    public ReadOnlySpan<ulong> Pfns => _pfns.AsSpan(0, _count);

    public int Count => _count;

    /// <summary>Copies pages <paramref name="pfns"/> (ascending) out of <paramref name="source"/>; the array is kept.</summary>
    public void Stage(IPageSource source, ulong[] pfns)
    {
        long need = (long)pfns.Length * 4096;
        if (need > _buffer.Length)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(need * 2, int.MaxValue - 4096));
        }
        for (int i = 0; i < pfns.Length; i++) source.GetPage(pfns[i]).CopyTo(_buffer.AsSpan(i * 4096, 4096));
        _pfns = pfns;
        _count = pfns.Length;
    }

    /// <summary>The <paramref name="i"/>-th staged page.</summary>
    public ReadOnlySpan<byte> PageAt(int i) => _buffer.AsSpan(i * 4096, 4096);

    /// <summary>Keeps only the pages whose <paramref name="keep"/> entry is true, in order.</summary>
    public void Keep(ReadOnlySpan<bool> keep)
    {
        int at = 0;
        for (int i = 0; i < _count; i++)
        {
            if (!keep[i]) continue;
            if (at != i)
            {
                _pfns[at] = _pfns[i];
                _buffer.AsSpan(i * 4096, 4096).CopyTo(_buffer.AsSpan(at * 4096, 4096));
            }
            at++;
        }
        _count = at;
    }

    public ReadOnlySpan<byte> GetPage(ulong pfn)
    {
        int i = Array.BinarySearch(_pfns, 0, _count, pfn);
        if (i < 0) throw new ArgumentOutOfRangeException(nameof(pfn), $"page {pfn} was not staged");
        return _buffer.AsSpan(i * 4096, 4096);
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
}
