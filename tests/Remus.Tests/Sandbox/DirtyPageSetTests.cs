using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// <see cref="DirtyPageSet"/> lists exactly the pages a plain bitmap would hold, however they were added (page by
/// page, by range, by word, moved from another set, taken from guest memory's host-dirty bitmap), across random
/// rounds with clears between; its summary is what makes listing O(pages written), so a page the summary lost would
/// be a page never sent.
/// </summary>
public class DirtyPageSetTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Its_list_equals_the_plain_bitmaps_across_random_rounds(int seed)
    {
        var random = new Random(seed);
        const int words = 5000; // 320 000 pages: more than one summary word's reach many times over
        var set = new DirtyPageSet(words);
        var other = new DirtyPageSet(words);
        for (int round = 0; round < 30; round++)
        {
            var expected = new SortedSet<ulong>();
            int ops = random.Next(0, 200);
            for (int i = 0; i < ops; i++)
            {
                ulong pfn = (ulong)random.NextInt64((long)set.Capacity);
                switch (random.Next(4))
                {
                    case 0:
                        set.Add(pfn);
                        expected.Add(pfn);
                        break;
                    case 1:
                        ulong end = Math.Min(set.Capacity, pfn + (ulong)random.Next(1, 300));
                        set.AddRange(pfn, end);
                        for (ulong p = pfn; p < end; p++) expected.Add(p);
                        break;
                    case 2:
                        ulong bits = (ulong)random.NextInt64() ^ ((ulong)random.NextInt64() << 1);
                        int w = (int)(pfn / 64);
                        set.OrWord(w, bits);
                        for (int b = 0; b < 64; b++) if ((bits & (1UL << b)) != 0) expected.Add((ulong)w * 64 + (ulong)b);
                        break;
                    default:
                        other.Add(pfn);
                        expected.Add(pfn);
                        break;
                }
            }
            other.MoveTo(set);
            Assert.Equal(0, other.Count);
            var plain = set.Bitmap.ToArray();
            var fromBitmap = new List<ulong>();
            for (int w = 0; w < plain.Length; w++)
                for (int b = 0; b < 64; b++) if ((plain[w] & (1UL << b)) != 0) fromBitmap.Add((ulong)w * 64 + (ulong)b);
            Assert.Equal(expected, fromBitmap);
            var listed = new ulong[expected.Count + 1];
            int n = set.CopyTo(listed, 0, set.Capacity);
            Assert.Equal(expected.Count, n);
            Assert.Equal(expected, listed[..n]);
            Assert.Equal(expected.Count, set.Count);
            // A window, and a span too short: the count is still the whole.
            ulong from = (ulong)random.NextInt64((long)set.Capacity), to = from + 100_000;
            int inWindow = expected.Count(p => p >= from && p < to);
            Assert.Equal(inWindow, set.CopyTo(new ulong[Math.Max(0, inWindow / 2)], from, to));
            set.Clear();
            Assert.Equal(0, set.Count);
            Assert.All(set.Bitmap.ToArray(), w => Assert.Equal(0UL, w));
        }
    }

    [Fact]
    public void The_host_dirty_pages_taken_through_the_summary_are_the_pages_written()
    {
        using var memory = new GuestMemory(64 << 20);
        var random = new Random(7);
        var set = new DirtyPageSet(memory.BitmapWords);
        for (int round = 0; round < 20; round++)
        {
            var expected = new SortedSet<ulong>();
            for (int i = 0; i < random.Next(0, 50); i++)
            {
                ulong addr = GuestMemory.UserBase + (ulong)random.NextInt64((long)(memory.Size - GuestMemory.UserBase - 3 * GuestMemory.PageSize));
                int len = random.Next(1, 3 * (int)GuestMemory.PageSize);
                memory.WritableSpan(addr, len)[0] = 1;
                for (ulong p = addr / GuestMemory.PageSize; p <= (addr + (ulong)len - 1) / GuestMemory.PageSize; p++) expected.Add(p);
            }
            memory.TakeHostDirty(set);
            var listed = new ulong[expected.Count + 1];
            int n = set.CopyTo(listed, 0, set.Capacity);
            Assert.Equal(expected, listed[..n]);
            set.Clear();
            memory.TakeHostDirty(set); // taken: nothing the second time
            Assert.Equal(0, set.Count);
        }
    }
}
