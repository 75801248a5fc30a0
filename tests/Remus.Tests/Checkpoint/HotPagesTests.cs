using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// The hot-page rules against a model of the ptrace dirty log (a write to a tracked page marks it written; an
/// untracked page is reported by every harvest, and once more after it is tracked again): whatever the guest writes,
/// and whenever, the backup's copy equals guest memory at every checkpoint, and unchanged pages are not sent.
/// </summary>
public class HotPagesTests
{
    private const int Pages = 96, First = 16;

    private sealed class Model : IPageSource
    {
        public readonly byte[][] Memory = [.. Enumerable.Range(0, Pages).Select(_ => new byte[4096])];
        public readonly byte[][] Backup = [.. Enumerable.Range(0, Pages).Select(_ => new byte[4096])];
        private readonly bool[] _written = new bool[Pages], _untracked = new bool[Pages], _leaving = new bool[Pages];

        /// <summary>The pages reported at the last harvest only because they were (or just stopped being) untracked.</summary>
        public readonly bool[] ReportedUntracked = new bool[Pages];

        public void Write(int pfn, byte value, int offset)
        {
            Memory[pfn][offset] = value;
            _written[pfn] = true; // a protected page: a fault; an untracked one: nobody sees it (reported anyway)
        }

        public ulong[] Harvest()
        {
            for (int p = 0; p < Pages; p++) ReportedUntracked[p] = _untracked[p] || _leaving[p];
            var set = Enumerable.Range(First, Pages - First).Where(p => _written[p] || _untracked[p] || _leaving[p]).Select(p => (ulong)p).ToArray();
            Array.Clear(_written);
            Array.Clear(_leaving);
            return set;
        }

        public void SetUntracked(ReadOnlySpan<ulong> bitmap)
        {
            for (int p = 0; p < Pages; p++)
            {
                bool now = (bitmap[p >> 6] & (1UL << (p & 63))) != 0;
                if (_untracked[p] && !now) _leaving[p] = true; // a write just before went unseen: reported once more
                _untracked[p] = now;
            }
        }

        public ReadOnlySpan<byte> GetPage(ulong pfn) => Memory[pfn];
    }

    [Theory]
    [InlineData(1, 1, 1000)]
    [InlineData(2, 2, 64)]
    [InlineData(3, 8, 10)]
    [InlineData(4, 3, 1)]
    [InlineData(5, 4, 1000, 2)]
    [InlineData(6, 1, 1000, 1)]
    public void The_backup_always_equals_memory_and_unchanged_pages_are_not_sent(int seed, int keepEpochs, int capacity, int maxRuns = HotPages.MaxRuns)
    {
        var rng = new Random(seed);
        var m = new Model();
        var hot = new HotPages(Pages, capacity, keepEpochs, maxRuns);
        using var staged = new StagedPages();
        long sent = 0, reported = 0;
        for (ulong epoch = 0; epoch < 400; epoch++)
        {
            // A hot band written every epoch, some pages written now and then (some with the value they hold),
            // and in some phases nothing at all.
            bool quiet = epoch % 50 >= 40;
            if (!quiet)
                for (int p = First; p < First + 8; p++) m.Write(p, (byte)rng.Next(256), rng.Next(4096));
            for (int k = rng.Next(quiet ? 1 : 12); k > 0; k--)
            {
                int p = rng.Next(First, Pages), at = rng.Next(4096);
                m.Write(p, rng.Next(3) == 0 ? m.Memory[p][at] : (byte)rng.Next(256), at);
            }

            var pfns = m.Harvest();
            staged.Stage(m, pfns);
            reported += pfns.Length;
            hot.Filter(staged, epoch);
            m.SetUntracked(hot.Untracked);
            foreach (ulong pfn in staged.Pfns)
            {
                if (m.ReportedUntracked[pfn])
                    Assert.False(staged.GetPage(pfn).SequenceEqual(m.Backup[pfn]), $"untracked page {pfn} sent unchanged in epoch {epoch}");
                staged.GetPage(pfn).CopyTo(m.Backup[pfn]);
            }
            sent += staged.Count;
            for (int p = First; p < Pages; p++)
                Assert.True(m.Memory[p].AsSpan().SequenceEqual(m.Backup[p]), $"page {p} differs after epoch {epoch}");
            Assert.True(hot.Count <= capacity);
        }
        Assert.True(sent < reported, $"{sent} sent of {reported} reported: nothing was found unchanged");
    }

    [Fact]
    public void Only_the_longest_runs_stay_untracked_and_the_others_are_still_checkpointed()
    {
        const int pages = 4096;
        var memory = new byte[pages][];
        for (int p = 0; p < pages; p++) memory[p] = new byte[4096];
        var source = new ArrayPages(memory);
        var hot = new HotPages(pages, capacity: pages, keepEpochs: 4);
        using var staged = new StagedPages();
        // Every other page changes (isolated runs of one), plus one run of 100 pages.
        var changed = Enumerable.Range(0, 2 * (HotPages.MaxRuns + 50)).Where(p => p % 2 == 0).Concat(Enumerable.Range(3000, 100)).Select(p => (ulong)p).ToArray();
        foreach (ulong p in changed) memory[p][0] = 1;
        staged.Stage(source, changed);
        hot.Filter(staged, 0);
        Assert.Equal(changed.Length, staged.Count); // all sent
        int untracked = 0, runs = 0;
        bool previous = false;
        for (int p = 0; p < pages; p++)
        {
            bool u = (hot.Untracked[p >> 6] & (1UL << (p & 63))) != 0;
            if (u) untracked++;
            if (u && !previous) runs++;
            previous = u;
        }
        Assert.Equal(HotPages.MaxRuns, runs);
        Assert.Equal(100 + HotPages.MaxRuns - 1, untracked); // the long run and the rest as single pages
        Assert.True((hot.Untracked[3000 >> 6] & (1UL << (3000 & 63))) != 0, "the long run is untracked");
    }

    private sealed class ArrayPages(byte[][] pages) : IPageSource
    {
        public ReadOnlySpan<byte> GetPage(ulong pfn) => pages[pfn];
    }

    [Fact]
    public void A_page_that_stops_changing_is_protected_again_after_keep_epochs()
    {
        var m = new Model();
        var hot = new HotPages(Pages, 100, keepEpochs: 3);
        using var staged = new StagedPages();
        bool IsUntracked(int p) => (hot.Untracked[p >> 6] & (1UL << (p & 63))) != 0;
        void Epoch(ulong e)
        {
            staged.Stage(m, m.Harvest());
            hot.Filter(staged, e);
            m.SetUntracked(hot.Untracked);
        }

        m.Write(20, 1, 0);
        Epoch(0);
        Assert.True(IsUntracked(20));
        Epoch(1);
        Assert.Equal(0, staged.Count); // reported (untracked) but unchanged: not sent
        Epoch(2);
        Assert.True(IsUntracked(20));
        Epoch(3);
        Assert.False(IsUntracked(20)); // tracked again...
        Assert.Equal(1, hot.Count);    // ...but reported once more: its shadow stays for that comparison
        Epoch(4);
        Assert.Equal(0, staged.Count); // reported, unchanged, not sent
        Assert.Equal(0, hot.Count);
        Epoch(5);
        Assert.Equal(0, staged.Count); // tracked: not even reported
    }
}
