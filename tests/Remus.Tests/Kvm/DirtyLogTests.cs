using Remus.Kvm;
using Xunit;

namespace Remus.Tests.Kvm;

public sealed class DirtyLogTests
{
    [Fact]
    public void Bitmap_size_rounds_pages_up_to_whole_words()
    {
        Assert.Equal(1, DirtyLog.BitmapWords(4096));
        Assert.Equal(1, DirtyLog.BitmapWords(64 * 4096));
        Assert.Equal(2, DirtyLog.BitmapWords(65 * 4096));
        Assert.Equal(256, DirtyLog.BitmapWords(64UL << 20));
    }

    [Fact]
    public void Pages_enumerate_in_order()
    {
        ulong[] bitmap = DirtyLog.AllocateBitmap(1UL << 20);
        foreach (ulong p in new ulong[] { 0, 5, 63, 64, 200, 255 }) DirtyLog.MarkDirty(bitmap, p);
        var pages = new List<ulong>();
        foreach (ulong p in DirtyLog.EnumeratePages(bitmap)) pages.Add(p);
        Assert.Equal([0UL, 5, 63, 64, 200, 255], pages);
        Assert.Equal(6, DirtyLog.CountDirty(bitmap));
        Assert.True(DirtyLog.IsDirty(bitmap, 63));
        Assert.False(DirtyLog.IsDirty(bitmap, 62));
    }
}
