using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// <see cref="GuestMemory.WritePages"/> (a receiver filling a domain's memory through the memfd rather than through
/// the mapping): what it writes is what the mapping reads, pages already mapped included; it is not host-dirty (as
/// <see cref="GuestMemory.Page"/> writes are not); MarkPopulated sees it; a range past the end changes nothing.
/// </summary>
public class GuestMemoryWritePagesTests
{
    private const int P = (int)GuestMemory.PageSize;

    [Fact]
    public void Pages_written_through_the_memfd_read_back_through_the_mapping()
    {
        using var memory = new GuestMemory(8 << 20);
        ulong first = GuestMemory.UserBase / GuestMemory.PageSize + 3;
        memory.Page(first + 1)[17] = 99; // one page of the run is already mapped here, with other content
        var data = new byte[5 * P];
        new Random(3).NextBytes(data);
        memory.WritePages(first, data);
        for (int i = 0; i < 5; i++)
            Assert.True(memory.Page(first + (ulong)i).SequenceEqual(data.AsSpan(i * P, P)), $"page {i} of the run");
        Assert.True(memory.Page(first - 1).IndexOfAnyExcept((byte)0) < 0, "the page before the run changed");
        Assert.True(memory.Page(first + 5).IndexOfAnyExcept((byte)0) < 0, "the page after the run changed");

        var dirty = new ulong[memory.BitmapWords];
        memory.TakeHostDirty(dirty);
        Assert.All(dirty, w => Assert.Equal(0UL, w));

        var populated = new ulong[memory.BitmapWords];
        memory.MarkPopulated(populated, GuestMemory.UserBase);
        for (ulong p = first; p < first + 5; p++) Assert.True((populated[p >> 6] >> (int)(p & 63) & 1) != 0, $"page 0x{p:x} not seen as populated");
    }

    [Fact]
    public void A_run_past_the_end_or_of_part_of_a_page_is_refused_and_writes_nothing()
    {
        using var memory = new GuestMemory(4 << 20);
        ulong last = memory.Size / GuestMemory.PageSize - 1;
        var two = new byte[2 * P];
        two.AsSpan().Fill(7);
        Assert.Throws<GuestFaultException>(() => memory.WritePages(last, two));
        Assert.True(memory.Page(last).IndexOfAnyExcept((byte)0) < 0, "a refused run wrote its first page");
        Assert.Throws<ArgumentException>(() => memory.WritePages(last, new byte[P + 1]));
        memory.WritePages(last, two.AsSpan(0, P));
        Assert.Equal(7, memory.Page(last)[P - 1]);
    }
}
