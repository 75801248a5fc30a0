using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox.Memory;

/// <summary>
/// A paged address space restored from checkpoints as a migration target and a Remus backup restore them (issue 14):
/// pages written through <see cref="AddressSpace.NoteRestoreWrite"/>, <see cref="AddressSpace.PrepareRestore"/> between
/// rounds, then <see cref="AddressSpace.Restore"/>. Whatever was prepared on (pages from different moments, data that
/// looks like page tables), the frames in use after a restore are exactly the source's, and every free frame reads as
/// zeros: the ledger of leaf tables (<see cref="LeafTableLedger"/>) saves time, never changes the outcome.
/// </summary>
public class RestoreLedgerTests
{
    private const ulong Page = AddressSpace.PageSize;
    private const int RW = AddressSpace.ProtRead | AddressSpace.ProtWrite;
    private const ulong RamBytes = 64 << 20;
    private static readonly ulong First = GuestMemory.UserBase / Page;

    private static AddressSpace Paged(GuestMemory ram) =>
        new(ram, paged: true) { ImageStart = 0x400000, BrkStart = 0x410000, Brk = 0x410000 };

    /// <summary>
    /// Copies into the target, as a stream would (noted), every program page whose content differs from what was last
    /// sent (a round). What was sent is kept here: reading a hole of the target's memfd would fill it.
    /// </summary>
    private static int SendDifferences(GuestMemory from, GuestMemory to, AddressSpace target, Dictionary<ulong, byte[]> sent)
    {
        int n = 0;
        for (ulong pfn = First; pfn < RamBytes / Page; pfn++)
        {
            var now = from.Page(pfn);
            if (sent.TryGetValue(pfn, out var last) ? now.SequenceEqual(last) : now.IndexOfAnyExcept((byte)0) < 0) continue;
            target.NoteRestoreWrite(pfn);
            now.CopyTo(to.Page(pfn));
            sent[pfn] = now.ToArray();
            n++;
        }
        return n;
    }

    private static void RestoreFrom(AddressSpace source, AddressSpace target) =>
        target.Restore(source.ImageStart, source.BrkStart, source.Brk, source.Mappings.ToList(), source.Layout, source.Tables!.RootEntries());

    /// <summary>
    /// The target holds the source's frames, no more, and every other frame of the program's is a hole of the memfd
    /// (reads as zeros and costs no host memory), though the stream wrote it (a page sent, then freed). Free frames
    /// are not read: that would fill them.
    /// </summary>
    private static void AssertSameFrames(AddressSpace source, AddressSpace target, GuestMemory targetRam, string when)
    {
        Assert.True(source.Frames!.UsedBits.SequenceEqual(target.Frames!.UsedBits), $"{when}: the frames in use differ");
        Assert.Equal(source.Frames.Used, target.Frames.Used);
        var populated = new ulong[targetRam.BitmapWords];
        targetRam.MarkPopulated(populated, GuestMemory.UserBase);
        for (ulong pfn = First; pfn < RamBytes / Page; pfn++)
            if (!target.Frames.IsUsed(pfn))
                Assert.True((populated[pfn >> 6] & (1UL << (int)(pfn & 63))) == 0, $"{when}: free frame 0x{pfn:x} is not a hole");
    }

    /// <summary>A page of data the program wrote that reads as a leaf table holding <paramref name="pfns"/>.</summary>
    private static byte[] TableLookalike(params ulong[] pfns)
    {
        var page = new byte[Page];
        for (int i = 0; i < pfns.Length; i++)
            BitConverter.TryWriteBytes(page.AsSpan(i * 8), PageTableEditor.Leaf(pfns[i], RW));
        return page;
    }

    [Fact]
    public void Frames_after_a_prepared_restore_are_the_sources_although_tables_changed_and_data_looked_like_tables()
    {
        using var ramA = new GuestMemory(RamBytes);
        using var ramB = new GuestMemory(RamBytes);
        var source = Paged(ramA);
        var target = Paged(ramB);
        var sent = new Dictionary<ulong, byte[]>();
        ulong a = 0x5000_0000_0000, b = 0x6000_0000_0000;
        source.Map(a, a + (16 << 20), RW);
        for (ulong va = a; va < a + (16 << 20); va += Page) source.KernelWrite(va, [(byte)(va >> 12), 1]);
        // Data pages that read as leaf tables holding frames no table holds: one freed before the end, one kept.
        ulong free1 = RamBytes / Page - 3, free2 = RamBytes / Page - 5;
        source.KernelWrite(a + 3 * Page, TableLookalike(free1));
        source.KernelWrite(a + (9 << 20), TableLookalike(free1, free2));

        // The first round, prepared on: the ledger counts the real tables and the lookalike.
        SendDifferences(ramA, ramB, target, sent);
        target.PrepareRestore();

        // Meanwhile the source frees half of it (tables emptied and freed), maps elsewhere, and rewrites the lookalike.
        source.Unmap(a, a + (8 << 20));
        source.Map(b, b + (4 << 20), RW);
        for (ulong va = b; va < b + (4 << 20); va += 2 * Page) source.KernelWrite(va, [2]);
        source.KernelWrite(a + (9 << 20) + Page, TableLookalike(free2));

        // The last round and the state.
        Assert.True(SendDifferences(ramA, ramB, target, sent) > 0);
        RestoreFrom(source, target);
        AssertSameFrames(source, target, ramB, "after the restore");
        Assert.False(target.Frames!.IsUsed(free1));
        Assert.False(target.Frames.IsUsed(free2));

        // A frame handed out now reads as zeros, and the program's bytes are where they were.
        ulong fresh = target.Translate(b + Page, allocate: true);
        Assert.True(ramB.PhysicalRead(fresh, (int)Page).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(2, ramB.PhysicalRead(target.Translate(b, allocate: false), 1)[0]);
        Assert.Equal((byte)((a + (10 << 20)) >> 12), ramB.PhysicalRead(target.Translate(a + (10 << 20), allocate: false), 1)[0]);
    }

    /// <summary>A Remus backup: checkpoint after checkpoint restored into the same space, some prepared on, at random.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Checkpoint_after_checkpoint_the_frames_are_the_sources(int seed)
    {
        var random = new Random(seed);
        using var ramA = new GuestMemory(RamBytes);
        using var ramB = new GuestMemory(RamBytes);
        var source = Paged(ramA);
        var target = Paged(ramB);
        var sent = new Dictionary<ulong, byte[]>();
        var regions = new List<(ulong Start, ulong End)>();
        for (int checkpoint = 0; checkpoint < 12; checkpoint++)
        {
            for (int step = random.Next(1, 6); step > 0; step--)
            {
                int what = regions.Count == 0 ? 0 : random.Next(4);
                if (what == 0 && source.Frames!.Free > 4096)
                {
                    ulong pages = (ulong)random.Next(1, 1200);
                    ulong start = source.FindFree(pages * Page);
                    source.Map(start, start + pages * Page, RW);
                    regions.Add((start, start + pages * Page));
                    for (ulong va = start; va < start + pages * Page; va += Page * (ulong)random.Next(1, 4))
                        source.KernelWrite(va, [(byte)random.Next(1, 256)]);
                }
                else if (what == 1 && regions.Count > 0)
                {
                    int i = random.Next(regions.Count);
                    source.Unmap(regions[i].Start, regions[i].End);
                    regions.RemoveAt(i);
                }
                else if (what == 2 && regions.Count > 0)
                {
                    var (start, end) = regions[random.Next(regions.Count)];
                    ulong va = start + (ulong)random.Next((int)((end - start) / Page)) * Page;
                    source.KernelWrite(va, TableLookalike((ulong)random.Next((int)First, (int)(RamBytes / Page))));
                }
                else if (regions.Count > 0)
                {
                    var (start, end) = regions[random.Next(regions.Count)];
                    ulong mid = start + (end - start) / Page / 2 * Page;
                    if (mid > start) source.SetProtection(start, mid, random.Next(2) == 0 ? 0 : AddressSpace.ProtRead);
                }
            }
            SendDifferences(ramA, ramB, target, sent);
            if (random.Next(3) == 0)
            {
                target.PrepareRestore(); // a round before the state
                continue;
            }
            RestoreFrom(source, target);
            AssertSameFrames(source, target, ramB, $"seed {seed}, checkpoint {checkpoint}");
        }
        RestoreFrom(source, target);
        AssertSameFrames(source, target, ramB, $"seed {seed}, the end");
    }

    /// <summary>The kernel edits the tables between two restores (a domain that ran): the next restore is still exact.</summary>
    [Fact]
    public void An_edit_of_the_tables_outside_the_restores_is_seen()
    {
        using var ramA = new GuestMemory(RamBytes);
        using var ramB = new GuestMemory(RamBytes);
        var source = Paged(ramA);
        var target = Paged(ramB);
        var sent = new Dictionary<ulong, byte[]>();
        ulong a = 0x5000_0000_0000;
        source.Map(a, a + (4 << 20), RW);
        for (ulong va = a; va < a + (4 << 20); va += Page) source.KernelWrite(va, [3]);
        SendDifferences(ramA, ramB, target, sent);
        RestoreFrom(source, target);
        AssertSameFrames(source, target, ramB, "first");
        // The target's kernel frees a page itself (its table changes, not through the restore's writer) ...
        target.SetProtection(a, a + Page, RW);
        target.Unmap(a, a + Page);
        // ... then a checkpoint where the source did the same comes.
        source.Unmap(a, a + Page);
        SendDifferences(ramA, ramB, target, sent);
        RestoreFrom(source, target);
        AssertSameFrames(source, target, ramB, "after the edit");
    }
}
