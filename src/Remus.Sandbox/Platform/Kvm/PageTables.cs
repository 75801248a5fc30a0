using System.Buffers.Binary;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The guest's only address space: an identity map (virtual = physical) of exactly the RAM, built with 2 MiB
/// pages; at run time only the program's page permissions are written into it (<see cref="PagePermissions"/>). Every page from 2 MiB on is user, read/write, executable (EFER.NXE is on, but
/// this identity map never sets the XD bit; the program's own paged tables do, Memory/PageTableEditor). Nothing past the end of RAM is mapped: a stray access gets #PF (SIGSEGV), never an MMIO
/// exit.
/// <para>The first 2 MiB (the platform's reserved area) is mapped with 4 KiB pages through one page table
/// (<see cref="GuestLayout.LowPageTable"/>), all supervisor-only except the pages the syscall path touches
/// (<see cref="GuestLayout.UserAccess"/>): each vCPU's data slots and syscall stack (user read/write), the stubs and
/// the resume frames (user read-only).
/// On stock KVM the stub runs at CPL 0 and would not need them; on kvm_pvm <c>syscall</c> does not leave CPL 3 (the
/// stub at LSTAR runs in hardware ring 3, issue 7 fact 1), so with a supervisor stub page the first syscall took #PF
/// (error code 0x5, CR2 = LSTAR). Nothing in those pages is secret and the VMM trusts none of it: the program
/// could always put any value in the registers the stub passes on.</para>
/// <para>1 GiB pages are deliberately not used: they need CPUID.80000001H:EDX.Page1GB, and the tables live in
/// guest memory, so a checkpoint would carry them to a host that might lack the feature.</para>
/// <para>Accessed (and, for leaves, Dirty) bits are preset so the CPU never writes the tables back, which keeps
/// them out of the dirty log.</para>
/// </summary>
internal static class PageTables
{
    public const ulong Present = 1UL << 0;
    public const ulong Writable = 1UL << 1;
    public const ulong User = 1UL << 2;
    public const ulong Accessed = 1UL << 5;
    public const ulong Dirty = 1UL << 6;
    public const ulong LargePage = 1UL << 7;

    public const ulong LargePageSize = 2UL << 20;

    /// <summary>The frame address bits of a 4 KiB leaf or table entry (51:12).</summary>
    public const ulong FrameMask = 0x000f_ffff_ffff_f000UL;

    /// <summary>PML4 and PDPT entries: present, writable, user (permissions are ANDed down the walk, so the upper
    /// levels allow everything and the leaves decide), accessed.</summary>
    public const ulong TableEntryFlags = Present | Writable | User | Accessed;

    /// <summary>A 2 MiB user page: P|RW|US|A|D|PS (0xe7).</summary>
    public const ulong UserPageFlags = Present | Writable | User | Accessed | Dirty | LargePage;

    /// <summary>A 2 MiB supervisor page: P|RW|A|D|PS, no US (0xe3). Not used by the layout (the first 2 MiB is in 4 KiB
    /// pages); kept for tests and tools that compare.</summary>
    public const ulong SupervisorPageFlags = Present | Writable | Accessed | Dirty | LargePage;

    /// <summary>A 4 KiB supervisor page of the reserved area: P|RW|A|D (0x63).</summary>
    public const ulong SupervisorSmallPageFlags = Present | Writable | Accessed | Dirty;

    /// <summary>A 4 KiB user read/write page of the reserved area (data page, syscall stack): P|RW|US|A|D (0x67).</summary>
    public const ulong UserSmallPageFlags = Present | Writable | User | Accessed | Dirty;

    /// <summary>The 4 KiB stub page: user read-only and executable (no XD bit): P|US|A|D (0x65).</summary>
    public const ulong UserReadOnlySmallPageFlags = Present | User | Accessed | Dirty;

    /// <summary>The flags of the 4 KiB page at <paramref name="address"/> in the reserved area.</summary>
    public static ulong SmallPageFlags(ulong address) => GuestLayout.UserAccess(address) switch
    {
        2 => UserSmallPageFlags,            // data slots and syscall stacks of every vCPU
        1 => UserReadOnlySmallPageFlags,    // syscall stubs and resume frames
        _ => SupervisorSmallPageFlags,
    };

    /// <summary>Number of page directories (one per started GiB) for <paramref name="memorySize"/> bytes of RAM.</summary>
    public static int DirectoryCount(ulong memorySize) => (int)((memorySize + (1UL << 30) - 1) >> 30);

    /// <summary>
    /// Writes PML4, PDPT and the page directories into <paramref name="reserved"/> (guest-physical bytes
    /// 0..<see cref="GuestLayout.ReservedSize"/>), zeroing every table first.
    /// </summary>
    public static void Write(Span<byte> reserved, ulong memorySize)
    {
        if ((ulong)reserved.Length < GuestLayout.ReservedSize) throw new ArgumentException("the reserved area is too small", nameof(reserved));
        if (memorySize % LargePageSize != 0 || memorySize <= GuestLayout.ReservedSize)
            throw new ArgumentOutOfRangeException(nameof(memorySize), "RAM must be a multiple of 2 MiB above the reserved area");
        if (memorySize > GuestLayout.MaxMemory)
            throw new SandboxException($"the KVM platform maps at most {GuestLayout.MaxMemory >> 30} GiB of guest memory");

        int directories = DirectoryCount(memorySize);
        reserved.Slice((int)GuestLayout.Pml4, 4096).Clear();
        reserved.Slice((int)GuestLayout.Pdpt, 4096).Clear();
        reserved.Slice((int)GuestLayout.PageDirectories, directories * 4096).Clear();
        reserved.Slice((int)GuestLayout.LowPageTable, 4096).Clear();
        reserved.Slice((int)GuestLayout.Pml4Alternate, 4096).Clear();

        WriteLowPageTable(reserved);
        // PML4[0] covers 0..512 GiB, which holds all of RAM.
        Put(reserved, GuestLayout.Pml4, GuestLayout.Pdpt | TableEntryFlags);
        Put(reserved, GuestLayout.Pml4Alternate, GuestLayout.Pdpt | TableEntryFlags);
        for (int d = 0; d < directories; d++)
        {
            ulong pd = GuestLayout.PageDirectories + (ulong)d * 4096;
            Put(reserved, GuestLayout.Pdpt + (ulong)d * 8, pd | TableEntryFlags);
            for (int e = 0; e < 512; e++)
            {
                ulong address = ((ulong)d << 30) + ((ulong)e << 21);
                if (address >= memorySize) break;
                ulong entry = address < GuestLayout.ReservedSize ? GuestLayout.LowPageTable | TableEntryFlags : address | UserPageFlags;
                Put(reserved, pd + (ulong)e * 8, entry);
            }
        }
    }

    /// <summary>The reserved first 2 MiB in 4 KiB pages (see the class summary).</summary>
    private static void WriteLowPageTable(Span<byte> reserved)
    {
        for (ulong e = 0; e < 512; e++)
        {
            ulong address = e << 12;
            Put(reserved, GuestLayout.LowPageTable + e * 8, address | SmallPageFlags(address));
        }
    }

    private static void Put(Span<byte> reserved, ulong at, ulong value) =>
        BinaryPrimitives.WriteUInt64LittleEndian(reserved[(int)at..], value);
}
