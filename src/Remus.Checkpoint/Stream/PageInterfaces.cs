namespace Remus.Checkpoint.Stream;

/// <summary>Where a writer reads page contents from (e.g. guest memory of a paused domain).</summary>
public interface IPageSource
{
    /// <summary>The current 4096 bytes of page <paramref name="pfn"/>. Read before the call returns.</summary>
    ReadOnlySpan<byte> GetPage(ulong pfn);
}

/// <summary>
/// Where a verified epoch is applied (the receiver's copy of guest memory). XOR-delta pages are applied against
/// the current content of the page, so the sink must hold exactly what earlier epochs of the same stream wrote
/// there (and zeros for pages never written).
/// </summary>
public interface IPageSink
{
    /// <summary>Number of page frames; valid PFNs are 0 .. PageCount-1. Checked for a whole epoch before applying.</summary>
    ulong PageCount { get; }

    /// <summary>
    /// Whether the sink takes page <paramref name="pfn"/> (below <see cref="PageCount"/>). Asked for every page of
    /// an epoch before any is written, so that a refusal applies nothing. Default: every page below PageCount.
    /// </summary>
    bool Accepts(ulong pfn) => true;

    /// <summary>The 4096 writable bytes of page <paramref name="pfn"/>, with its current content.</summary>
    Span<byte> GetPage(ulong pfn);

    /// <summary>
    /// Whether <see cref="GetPage"/> may be called, and its pages written, from several threads at once (each page
    /// by one thread): a large epoch is then applied in parallel. Default: no.
    /// </summary>
    bool ConcurrentPages => false;

    /// <summary>
    /// Whether large epochs should write whole pages (RAW, ZERO, LZ4) in runs through <see cref="WriteRun"/> rather
    /// than page by page through <see cref="GetPage"/>: for guest memory that is mostly being filled for the first
    /// time (an initial synchronisation, a migration's rounds), where a write through a mapping costs a fault per
    /// page. Default: no.
    /// </summary>
    bool PrefersRuns => false;

    /// <summary>
    /// Writes <paramref name="pages"/> (whole pages) to pages <paramref name="firstPfn"/>.. of the sink, as copying
    /// each into <see cref="GetPage"/> would (the default does exactly that). Called only for pages the sink accepted.
    /// </summary>
    void WriteRun(ulong firstPfn, ReadOnlySpan<byte> pages)
    {
        const int P = StreamFormat.PageSize;
        for (int i = 0; i < pages.Length / P; i++) pages.Slice(i * P, P).CopyTo(GetPage(firstPfn + (ulong)i));
    }
}
