using System.Numerics;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint;

/// <summary>A domain's guest RAM as the stream layer sees it: a page source on the sender, a sink on the receiver.</summary>
internal sealed class DomainPages(ICheckpointable domain) : IPageSource, IPageSink
{
    public ulong PageCount => domain.PageCount;
    public ReadOnlySpan<byte> GetPage(ulong pfn) => domain.ReadPage(pfn);
    Span<byte> IPageSink.GetPage(ulong pfn) => domain.WritablePage(pfn);

    /// <summary>Guest memory is one mapping: pages are independent spans of it.</summary>
    bool IPageSink.ConcurrentPages => true;

    /// <summary>Large epochs fill guest memory in runs written through the memfd (<see cref="ICheckpointable.WritePages"/>).</summary>
    bool IPageSink.PrefersRuns => true;

    void IPageSink.WriteRun(ulong firstPfn, ReadOnlySpan<byte> pages) => domain.WritePages(firstPfn, pages);

    /// <summary>Pages below <see cref="ICheckpointable.ProgramFirstPage"/> belong to the platform: an epoch naming one is refused whole.</summary>
    public bool Accepts(ulong pfn) => pfn >= domain.ProgramFirstPage && pfn < domain.PageCount;

    /// <summary>The program pages set in <paramref name="bitmap"/>, in order (pages of the platform excluded).</summary>
    public static ulong[] Set(ReadOnlySpan<ulong> bitmap, ICheckpointable domain)
    {
        ulong first = domain.ProgramFirstPage, pageCount = domain.PageCount;
        int n = 0;
        foreach (ulong w in bitmap) n += BitOperations.PopCount(w);
        var pfns = new ulong[n];
        int at = 0;
        for (int i = 0; i < bitmap.Length; i++)
        {
            ulong w = bitmap[i];
            while (w != 0)
            {
                ulong pfn = (ulong)i * 64 + (ulong)BitOperations.TrailingZeroCount(w);
                w &= w - 1;
                if (pfn >= first && pfn < pageCount) pfns[at++] = pfn;
            }
        }
        return at == n ? pfns : pfns[..at];
    }
}
