using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox.Memory;

/// <summary>
/// The paged address space on its own (no vCPU): placement, frames handed out on first touch and returned, the page
/// tables' shape, commit accounting, and an identity-model image restored with identity tables.
/// </summary>
public class AddressSpaceTests
{
    private const ulong Page = AddressSpace.PageSize;
    private const int RW = AddressSpace.ProtRead | AddressSpace.ProtWrite;

    private static AddressSpace Paged(GuestMemory ram)
    {
        var mm = new AddressSpace(ram, paged: true) { ImageStart = 0x400000, BrkStart = 0x410000, Brk = 0x410000 };
        return mm;
    }

    [Fact]
    public void Mappings_go_top_down_from_below_the_stack_gap_and_a_free_hint_is_honoured()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        ulong a = mm.FindFree(4 * Page);
        Assert.Equal(AddressSpace.TaskSize - AddressSpace.StackGap - 4 * Page, a);
        mm.Map(a, a + 4 * Page, RW);
        ulong b = mm.FindFree(Page);
        Assert.Equal(a - Page, b);
        // A 64 GiB reservation fits although RAM is 16 MiB, and costs no frame.
        ulong big = mm.FindFree(64UL << 30);
        Assert.NotEqual(0UL, big);
        ulong used = mm.Frames!.Used;
        mm.Map(big, big + (64UL << 30), 0, MapFlags.NoReserve);
        Assert.Equal(used, mm.Frames.Used);
        Assert.True(mm.IsFree(0x1000_0000_0000, 0x1000_0000_0000 + Page));
        Assert.False(mm.IsFree(big + Page, big + 2 * Page));
        Assert.False(mm.MayMapFixed(AddressSpace.TaskSize - Page, AddressSpace.TaskSize)); // the stack
    }

    [Fact]
    public void A_fault_backs_an_aligned_run_and_unmapping_returns_the_frames_and_the_empty_tables()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        ulong baseline = mm.Frames!.Used;
        ulong at = 0x5000_0000_0000;
        mm.Map(at, at + 64 * Page, RW);
        var mapped = new List<(ulong Va, ulong Pfn, ulong Pages)>();
        mm.PagesMapped = (va, pfn, pages, _) => mapped.Add((va, pfn, pages));
        Assert.Equal(FaultResolution.Resolved, mm.ResolveFault(at + 20 * Page + 5, write: true));
        // One run of contiguous frames for the aligned 16 pages around the fault.
        Assert.Equal(new[] { (at + 16 * Page, mapped[0].Pfn, 16UL) }, mapped.Select(m => (m.Va, m.Pfn, m.Pages)).ToArray());
        Assert.Equal(mapped[0].Pfn * Page + 123, mm.Translate(at + 16 * Page + 123, allocate: false));
        Assert.True(mm.Frames.Used > baseline + 16); // the pages and the tables above them
        var changed = new List<(ulong, ulong)>();
        mm.TranslationChanged = (s, l) => changed.Add((s, l));
        mm.Unmap(at, at + 64 * Page);
        Assert.Equal(baseline, mm.Frames.Used);
        Assert.Contains((at, 64 * Page), changed);
        Assert.Equal(AddressSpace.NoFrame, mm.Translate(at + 16 * Page, allocate: false));
    }

    [Fact]
    public void Faults_say_what_Linux_says()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        ulong at = 0x5000_0000_0000;
        mm.Map(at, at + Page, AddressSpace.ProtRead);
        mm.Map(at + Page, at + 2 * Page, 0);
        Assert.Equal(FaultResolution.NotMapped, mm.ResolveFault(at - Page, write: false));
        Assert.Equal(FaultResolution.NotAllowed, mm.ResolveFault(at, write: true));
        Assert.Equal(FaultResolution.NotAllowed, mm.ResolveFault(at + Page, write: false));
        Assert.Equal(FaultResolution.Resolved, mm.ResolveFault(at, write: false));
    }

    [Fact]
    public void Mprotect_to_none_keeps_the_frame_and_its_content()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        ulong at = 0x5000_0000_0000;
        mm.Map(at, at + Page, RW);
        mm.KernelWrite(at + 8, [1, 2, 3]);
        ulong phys = mm.Translate(at, allocate: false);
        mm.SetProtection(at, at + Page, 0);
        Assert.Equal(FaultResolution.NotAllowed, mm.ResolveFault(at, write: false));
        mm.SetProtection(at, at + Page, RW);
        Assert.Equal(phys, mm.Translate(at, allocate: false));
        Assert.Equal(new byte[] { 1, 2, 3 }, ram.PhysicalRead(phys + 8, 3).ToArray());
    }

    [Fact]
    public void Mremap_moves_the_page_table_entries_not_the_bytes()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        ulong from = 0x5000_0000_0000, to = 0x6000_0000_0000;
        mm.Map(from, from + 4 * Page, RW);
        mm.KernelWrite(from + Page, [42]);
        ulong phys = mm.Translate(from + Page, allocate: false);
        mm.Move(from, 4 * Page, to, 8 * Page);
        Assert.Equal(phys, mm.Translate(to + Page, allocate: false));
        Assert.Null(mm.MappingAt(from));
        Assert.Equal(to + 8 * Page, mm.MappingAt(to)!.Value.End);
    }

    [Fact]
    public void Committed_memory_is_bounded_by_RAM_and_NORESERVE_is_not()
    {
        using var ram = new GuestMemory(16 << 20);
        var mm = Paged(ram);
        Assert.True(mm.MayCommit(8 << 20));
        Assert.False(mm.MayCommit(32 << 20));
        ulong at = 0x5000_0000_0000;
        mm.Map(at, at + (10 << 20), RW);
        Assert.False(mm.MayCommit(8 << 20));
        Assert.True(mm.MayCommit(8 << 20, at, at + (10 << 20))); // MAP_FIXED over it replaces it
        mm.Map(at, at + (10 << 20), RW, MapFlags.NoReserve);
        Assert.True(mm.MayCommit(8 << 20));
    }

    /// <summary>A checkpoint of the identity model (kernel state before version 4): each populated page of a region
    /// keeps its frame at its own address; the rest is backed on first touch from frames no one holds.</summary>
    [Fact]
    public void An_identity_image_restores_with_identity_tables()
    {
        using var ram = new GuestMemory(16 << 20);
        ulong data = 0x800000;
        ram.Physical(data, 4).Fill(7);          // a page of a mapping that holds data
        ram.Physical(0xA00000, 4).Fill(9);      // a page of no region: garbage to be punched
        var mm = new AddressSpace(ram, paged: true);
        mm.Restore(0x400000, 0x410000, 0x410000, [new Mapping(data, data + 4 * Page, RW)], layout: null, rootEntries: null);
        Assert.Equal(ram.Size, mm.StackTop);
        Assert.Equal(data, mm.Translate(data, allocate: false));
        Assert.Equal(AddressSpace.NoFrame, mm.Translate(data + Page, allocate: false));
        Assert.True(mm.Frames!.IsUsed(data / Page));
        Assert.False(mm.Frames.IsUsed(0xA00000 / Page));
        Assert.Equal(0, ram.PhysicalRead(0xA00000, 1)[0]);
        ulong fresh = mm.Translate(data + Page, allocate: true);
        Assert.True(mm.Frames.IsUsed(fresh / Page)); // any free frame, zeroed
        Assert.Equal(0, ram.PhysicalRead(fresh, 1)[0]);
    }
}
