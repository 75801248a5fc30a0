using System.Buffers.Binary;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// Enforces the program's page permissions in the KVM guest's identity map (<see cref="PageTables"/>): a 2 MiB user
/// page whose 4 KiB pages need different permissions is split into a page table taken from a pool in the reserved
/// area (<see cref="GuestLayout.PageTablePool"/>), and each 4 KiB entry gets present/writable from the program's
/// protection (unmapped and PROT_NONE: not present). Only the VMM writes these tables; a change that takes a right
/// away (not present, read-only) leaves stale translations in the vCPU (TLB, and on kvm_pvm its shadow page tables),
/// so each such page is handed to <paramref name="flush"/>, which drops them before the vCPU runs again
/// (<see cref="TlbFlush"/>). When the pool is exhausted (RAM beyond what it covers) the rest stays one RWX map, and
/// that is said once in the log.
/// </summary>
internal sealed class PagePermissions(GuestMemory memory, TlbFlush flush)
{
    private int _poolUsed;
    private bool _saidExhausted;

    public Action<string>? Log { get; set; }

    /// <summary>Sets the permissions of [start, start+length) (page aligned, user RAM) to <paramref name="prot"/> (-1: unmapped).</summary>
    public void Protect(ulong start, ulong length, int prot)
    {
        ulong end = Math.Min(start + length, memory.Size);
        start = Math.Max(start, GuestLayout.ReservedSize);
        ulong leaf = prot <= 0 ? 0 : PageTables.Present | PageTables.User | PageTables.Accessed | PageTables.Dirty
            | ((prot & 2) != 0 ? PageTables.Writable : 0);
        for (ulong at = start & ~0xfffUL; at < end;)
        {
            ulong regionEnd = Math.Min(end, (at | (PageTables.LargePageSize - 1)) + 1);
            ulong pde = PdeAddress(at);
            ulong entry = Read(pde);
            if ((entry & PageTables.LargePage) != 0)
            {
                if (leaf == (PageTables.UserPageFlags & ~PageTables.LargePage))
                {
                    at = regionEnd; // a 2 MiB page grants that already
                    continue;
                }
                if (!Split(pde, entry))
                {
                    at = regionEnd;
                    continue;
                }
                entry = Read(pde);
            }
            ulong table = entry & ~0xfffUL;
            for (; at < regionEnd; at += 4096)
            {
                ulong pte = table + ((at >> 12) & 511) * 8;
                ulong old = Read(pte);
                ulong now = leaf == 0 ? 0 : at | leaf;
                if (old == now) continue;
                Write(pte, now);
                if ((old & PageTables.Present) != 0 && ((now & PageTables.Present) == 0 || ((old & PageTables.Writable) != 0 && (now & PageTables.Writable) == 0)))
                    flush.Retire(old & PageTables.FrameMask, 4096);
            }
        }
    }

    /// <summary>Replaces a 2 MiB user page by a table of 512 4 KiB pages with the same rights; false when the pool is empty.</summary>
    private bool Split(ulong pde, ulong entry)
    {
        if (_poolUsed >= GuestLayout.PageTablePoolPages)
        {
            if (!_saidExhausted) Log?.Invoke($"page permissions are enforced in the first {GuestLayout.PageTablePoolPages * 2} MiB of RAM only on KVM; the rest stays read-write for the program's own accesses");
            _saidExhausted = true;
            return false;
        }
        ulong table = GuestLayout.PageTablePool + (ulong)_poolUsed++ * 4096;
        ulong base2m = entry & ~(PageTables.LargePageSize - 1) & 0x000f_ffff_ffff_f000UL;
        ulong small = PageTables.UserPageFlags & ~PageTables.LargePage;
        var t = memory.Physical(table, 4096);
        for (int i = 0; i < 512; i++) BinaryPrimitives.WriteUInt64LittleEndian(t[(i * 8)..], (base2m + ((ulong)i << 12)) | small);
        Write(pde, table | PageTables.TableEntryFlags);
        return true;
    }

    private static ulong PdeAddress(ulong address) => GuestLayout.PageDirectories + (address >> 30) * 4096 + ((address >> 21) & 511) * 8;

    private ulong Read(ulong at) => BinaryPrimitives.ReadUInt64LittleEndian(memory.PhysicalRead(at, 8));

    private void Write(ulong at, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(memory.Physical(at, 8), value);
}
