using System.Buffers.Binary;

namespace Remus.Simulation;

/// <summary>
/// The simulated guest's memory as a pure function of its configuration and counter: step <c>m</c> writes page 1
/// (the counter), page 2 (a hot page, every step) and <see cref="GuestConfig.DirtyPerStep"/> pages chosen by hash,
/// each filled whole with a pattern of <c>(seed, m, page)</c>. So the memory a backup holds can be checked page by
/// page against what a guest whose counter says <c>n</c> must have written: any page the checkpoints lost, mixed up
/// or took from another epoch shows.
/// </summary>
public static class GuestImage
{
    public const int PageSize = 4096;
    /// <summary>Page 0 is the platform's: the guest's platform ticks it, the engine must never transfer it.</summary>
    public const int PlatformPage = 0;
    public const int CounterPage = 1;
    public const int HotPage = 2;
    private const ulong CounterMagic = 0x3147415045474953; // "SIGEPAG1"

    /// <summary>The data pages step <paramref name="m"/> writes (the hot page first; may repeat).</summary>
    public static void PagesOfStep(GuestConfig config, ulong m, Span<int> into)
    {
        into[0] = HotPage;
        int data = config.Pages - HotPage;
        for (int j = 1; j < into.Length; j++) into[j] = HotPage + (int)(SimHash.Of(config.Seed, m, (ulong)j) % (ulong)data);
    }

    public static int PagesPerStep(GuestConfig config) => 1 + config.DirtyPerStep;

    public static void Fill(Span<byte> page, ulong seed, ulong m, int pfn)
    {
        ulong v = SimHash.Of(seed, m, (ulong)pfn + 0x1000);
        BinaryPrimitives.WriteUInt64LittleEndian(page, m);
        BinaryPrimitives.WriteUInt64LittleEndian(page[8..], (ulong)pfn);
        for (int i = 16; i < 512; i += 8) BinaryPrimitives.WriteUInt64LittleEndian(page[i..], v ^ (ulong)i);
        for (int i = 512; i < PageSize; i += 8) BinaryPrimitives.WriteUInt64LittleEndian(page[i..], v);
    }

    public static void WriteCounter(Span<byte> page, GuestConfig config, ulong counter)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(page, CounterMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(page[8..], config.Fingerprint);
        BinaryPrimitives.WriteUInt64LittleEndian(page[16..], counter);
    }

    /// <summary>The counter in a counter page, or null when the page is not one of this configuration's.</summary>
    public static ulong? ReadCounter(ReadOnlySpan<byte> page, GuestConfig config) =>
        BinaryPrimitives.ReadUInt64LittleEndian(page) == CounterMagic && BinaryPrimitives.ReadUInt64LittleEndian(page[8..]) == config.Fingerprint
            ? BinaryPrimitives.ReadUInt64LittleEndian(page[16..])
            : null;

    /// <summary>
    /// Checks a whole memory image against the model: null when every program page is exactly what a guest at its
    /// counter must hold, else the first difference.
    /// </summary>
    public static string? Verify(GuestConfig config, ReadOnlySpan<byte> memory)
    {
        if (ReadCounter(memory.Slice(CounterPage * PageSize, PageSize), config) is not { } n)
            return "the counter page is not this guest's (magic or configuration fingerprint wrong)";
        var last = new long[config.Pages];
        Array.Fill(last, -1);
        int missing = config.Pages - HotPage;
        Span<int> pages = stackalloc int[PagesPerStep(config)];
        for (long m = (long)n - 1; m >= 0 && missing > 0; m--)
        {
            PagesOfStep(config, (ulong)m, pages);
            foreach (int p in pages)
                if (last[p] < 0) { last[p] = m; missing--; }
        }
        Span<byte> expected = stackalloc byte[PageSize];
        for (int p = HotPage; p < config.Pages; p++)
        {
            var actual = memory.Slice(p * PageSize, PageSize);
            if (last[p] < 0) expected.Clear();
            else Fill(expected, config.Seed, (ulong)last[p], p);
            if (!actual.SequenceEqual(expected))
            {
                ulong stamp = BinaryPrimitives.ReadUInt64LittleEndian(actual);
                return $"page {p} differs from the model at n={n}: expected {(last[p] < 0 ? "zeros" : $"the write of step {last[p]}")}, " +
                       $"holds {(actual.IndexOfAnyExcept((byte)0) < 0 ? "zeros" : $"a page stamped step {stamp}")}";
            }
        }
        return null;
    }
}
