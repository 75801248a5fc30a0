using System.Buffers;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

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

    public ReadOnlySpan<ulong> Pfns => _pfns;

    public void Stage(SandboxDomain domain, ulong[] pfns)
    {
        long need = (long)pfns.Length * 4096;
        if (need > _buffer.Length)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(need * 2, int.MaxValue - 4096));
        }
        for (int i = 0; i < pfns.Length; i++) domain.ReadPage(pfns[i]).CopyTo(_buffer.AsSpan(i * 4096, 4096));
        _pfns = pfns;
    }

    public ReadOnlySpan<byte> GetPage(ulong pfn)
    {
        int i = Array.BinarySearch(_pfns, pfn);
        if (i < 0) throw new ArgumentOutOfRangeException(nameof(pfn), $"page {pfn} was not staged");
        return _buffer.AsSpan(i * 4096, 4096);
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
}
