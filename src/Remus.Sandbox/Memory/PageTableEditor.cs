using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>
/// The program's x86-64 4-level page tables, kept in guest RAM and edited by the VMM (never by the guest). The root
/// PML4 sits at <see cref="Root"/> in the platform area; every other table page is a frame from the
/// <see cref="FrameAllocator"/>, so the tables are dirty-logged and checkpointed like any page. A leaf holds the frame
/// of a program page: present (with user, writable for PROT_WRITE, and no-execute without PROT_EXEC) when the program may touch it, or not
/// present but still holding its frame (<see cref="HasFrame"/>) under PROT_NONE, so mprotect keeps the data.
/// Table pages left empty by an edit are returned. User pages are never below <see cref="GuestMemory.UserBase"/>:
/// a platform that maps its own first 2 MiB into the same tables owns those entries.
/// </summary>
public sealed class PageTableEditor(GuestMemory ram, FrameAllocator frames)
{
    /// <summary>Guest-physical address of the root table (in the platform area).</summary>
    public const ulong Root = 0xF000;

    /// <summary>A second root, always identical to <see cref="Root"/>: a platform flushes a vCPU's TLB by switching CR3
    /// between the two (KVM resets the vCPU's MMU context when CR3 and CR4 change).</summary>
    public const ulong RootMirror = 0xE000;

    /// <summary>
    /// The platform's own page table of the first 2 MiB (KVM: GuestLayout.LowPageTable, its GDT, IDT, stubs), which the
    /// tables point to so the platform's pages are mapped in the program's address space as in its own.
    /// </summary>
    public const ulong PlatformLowTable = 0x12000;

    /// <summary>Never free a table page, nor edit the tables' shape (a platform that cannot flush the vCPU's cached
    /// walks: kvm_pvm).</summary>
    public bool KeepTables { get; set; }

    public const ulong Present = 1, Writable = 2, User = 4, Accessed = 1 << 5, Dirty = 1 << 6;
    /// <summary>XD: no instruction fetch from the page (the platform runs with EFER.NXE, as Linux does).</summary>
    public const ulong NoExecute = 1UL << 63;
    /// <summary>Software bit (ignored by the MMU): the entry holds a frame, present or not.</summary>
    public const ulong HasFrame = 1 << 9;
    public const ulong AddressMask = 0x000F_FFFF_FFFF_F000;
    private const ulong TableFlags = Present | Writable | User | Accessed;
    private const ulong Page = GuestMemory.PageSize;

    /// <summary>The leaf entry of a page with frame <paramref name="pfn"/> and protection <paramref name="prot"/>.</summary>
    public static ulong Leaf(ulong pfn, int prot)
    {
        ulong e = pfn * Page | HasFrame;
        if (prot > 0) e |= Present | User | Accessed | Dirty;
        if ((prot & AddressSpace.ProtWrite) != 0) e |= Writable;
        if (prot > 0 && (prot & AddressSpace.ProtExec) == 0) e |= NoExecute;
        return e;
    }

    public static ulong FrameOf(ulong entry) => (entry & AddressMask) / Page;

    private ulong Read(ulong table, int index) => BinaryPrimitives.ReadUInt64LittleEndian(ram.PhysicalRead(table + (ulong)index * 8, 8));
    /// <summary>Writes to the tables so far (any edit, restore's included): a <see cref="LeafTableLedger"/> is valid
    /// only while it has seen every one.</summary>
    public long Edits { get; private set; }

    private void Write(ulong table, int index, ulong value)
    {
        Edits++;
        BinaryPrimitives.WriteUInt64LittleEndian(ram.Physical(table + (ulong)index * 8, 8), value);
        if (table == Root) BinaryPrimitives.WriteUInt64LittleEndian(ram.Physical(RootMirror + (ulong)index * 8, 8), value);
    }

    /// <summary>
    /// Empties the tables (the root and its mirror) but for the entry of the first 2 MiB, which points at the
    /// platform's table (<see cref="PlatformLowTable"/>); false when RAM has no frames for the two tables above it.
    /// </summary>
    public bool InitRoot()
    {
        Edits++;
        ram.Physical(Root, (int)Page).Clear();
        ram.Physical(RootMirror, (int)Page).Clear();
        ulong pdpt = frames.Allocate(), pd = frames.Allocate();
        if (pdpt == 0 || pd == 0) return false;
        Write(Root, 0, pdpt * Page | TableFlags);
        Write(pdpt * Page, 0, pd * Page | TableFlags);
        Write(pd * Page, 0, PlatformLowTable | TableFlags);
        return true;
    }

    private static int Index(ulong va, int level) => (int)((va >> (12 + 9 * (level - 1))) & 511);

    /// <summary>The leaf entry for <paramref name="va"/>, or 0.</summary>
    public ulong Get(ulong va)
    {
        ulong table = Root;
        for (int level = 4; level > 1; level--)
        {
            ulong e = Read(table, Index(va, level));
            if ((e & Present) == 0) return 0;
            table = e & AddressMask;
        }
        return Read(table, Index(va, 1));
    }

    /// <summary>Sets the leaf entry for <paramref name="va"/>, making tables as needed; false when RAM is full.</summary>
    public bool Set(ulong va, ulong entry)
    {
        ulong table = Root;
        for (int level = 4; level > 1; level--)
        {
            int i = Index(va, level);
            ulong e = Read(table, i);
            if ((e & Present) == 0)
            {
                if (entry == 0) return true;
                ulong pfn = frames.Allocate();
                if (pfn == 0) return false;
                e = pfn * Page | TableFlags;
                Write(table, i, e);
            }
            table = e & AddressMask;
        }
        Write(table, Index(va, 1), entry);
        return true;
    }

    /// <summary>Rewrites a leaf: given the page's address and entry, returns the new entry (0 clears it).</summary>
    public delegate ulong LeafEdit(ulong va, ulong entry);

    /// <summary>
    /// Calls <paramref name="edit"/> for every non-empty leaf of [start, end) (absent tables are skipped whole) and
    /// stores what it returns; tables left empty are freed.
    /// </summary>
    public void Edit(ulong start, ulong end, LeafEdit edit)
    {
        if (end > start) EditTable(Root, 4, 0, start, end, edit);
    }

    /// <returns>whether the table is now empty</returns>
    private bool EditTable(ulong table, int level, ulong baseVa, ulong start, ulong end, LeafEdit edit)
    {
        ulong span = 1UL << (12 + 9 * (level - 1));
        int first = (int)((Math.Max(start, baseVa) - baseVa) / span);
        bool changed = false;
        for (int i = first; i < 512; i++)
        {
            ulong va = baseVa + (ulong)i * span;
            if (va >= end) break;
            ulong e = Read(table, i);
            if (e == 0) continue;
            if (level == 1)
            {
                ulong n = edit(va, e);
                if (n != e) { Write(table, i, n); changed |= n == 0; }
            }
            else if ((e & Present) != 0 && EditTable(e & AddressMask, level - 1, va, start, end, edit))
            {
                frames.Release(FrameOf(e));
                Write(table, i, 0);
                changed = true;
            }
        }
        if (!changed || table == Root || KeepTables) return false;
        for (int i = 0; i < 512; i++) if (Read(table, i) != 0) return false;
        return true;
    }

    /// <summary>Calls <paramref name="visit"/> for every table page and every leaf frame (restore rebuilds the
    /// frame allocator from it).</summary>
    public void Walk(Action<ulong> tableFrame, Action<ulong, ulong> leaf) => WalkTable(Root, 4, 0, tableFrame, leaf);

    private void WalkTable(ulong table, int level, ulong baseVa, Action<ulong> tableFrame, Action<ulong, ulong> leaf)
    {
        ulong span = 1UL << (12 + 9 * (level - 1));
        for (int i = 0; i < 512; i++)
        {
            ulong e = Read(table, i);
            if (e == 0) continue;
            ulong va = baseVa + (ulong)i * span;
            if (level == 1) leaf(va, e);
            else if ((e & Present) != 0)
            {
                tableFrame(FrameOf(e));
                WalkTable(e & AddressMask, level - 1, va, tableFrame, leaf);
            }
        }
    }

    /// <summary>
    /// Sets in <paramref name="used"/> (one bit per frame of RAM) the bit of every table page below the root and of
    /// every frame a leaf holds (<see cref="HasFrame"/>), as <see cref="Walk"/> would name them, frames past RAM left
    /// out: restore rebuilds the frame allocator from it. Each table is read once as a whole page, with no call per
    /// entry. A table past RAM is a <see cref="GuestFaultException"/>.
    /// </summary>
    public void MarkReachable(Span<ulong> used) => MarkTable(Root, 4, used, ram.Size / Page);

    private void MarkTable(ulong table, int level, Span<ulong> used, ulong limit)
    {
        var entries = MemoryMarshal.Cast<byte, ulong>(ram.PhysicalRead(table, (int)Page));
        if (level == 1)
        {
            foreach (ulong e in entries)
            {
                if ((e & HasFrame) == 0) continue;
                ulong pfn = FrameOf(e);
                if (pfn < limit) used[(int)(pfn >> 6)] |= 1UL << (int)(pfn & 63);
            }
            return;
        }
        for (int i = 0; i < entries.Length; i++)
        {
            ulong e = entries[i];
            if ((e & Present) == 0) continue;
            ulong pfn = FrameOf(e);
            if (pfn < limit) used[(int)(pfn >> 6)] |= 1UL << (int)(pfn & 63);
            MarkTable(e & AddressMask, level - 1, used, limit);
        }
    }

    /// <summary>The root's non-empty entries (a checkpoint carries them: the root is in the platform area).</summary>
    public List<(int Index, ulong Entry)> RootEntries()
    {
        var list = new List<(int, ulong)>();
        for (int i = 0; i < 512; i++) if (Read(Root, i) is var e and not 0) list.Add((i, e));
        return list;
    }

    /// <summary>Replaces the root's entries (restore).</summary>
    public void LoadRoot(IEnumerable<(int Index, ulong Entry)> entries)
    {
        Edits++;
        ram.Physical(Root, (int)Page).Clear();
        ram.Physical(RootMirror, (int)Page).Clear();
        foreach (var (i, e) in entries) Write(Root, i, e);
    }
}
