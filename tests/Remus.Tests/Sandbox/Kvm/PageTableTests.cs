using System.Buffers.Binary;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>
/// Walks the KVM platform's page tables with an independent 4-level walker (SDM vol. 3A, 4.5) and checks that every
/// address of RAM maps to itself, that user pages are user/writable, that the reserved first 2 MiB is in 4 KiB pages
/// and supervisor-only except the three pages the syscall path touches on kvm_pvm (issue 7 fact 1), and that nothing
/// past RAM is mapped.
/// </summary>
public sealed class PageTableTests
{
    private readonly record struct Walk(bool Present, ulong Physical, bool User, bool Writable, bool Large);

    /// <summary>Translates <paramref name="va"/> through the tables in <paramref name="image"/> (guest-physical bytes).</summary>
    private static Walk Translate(byte[] image, ulong cr3, ulong va)
    {
        ulong Entry(ulong table, ulong index)
        {
            Assert.True(table + index * 8 + 8 <= (ulong)image.Length, $"table 0x{table:x} lies outside the reserved area");
            return BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan((int)(table + index * 8)));
        }
        const ulong addressMask = 0x000f_ffff_ffff_f000;
        bool user = true, writable = true;
        ulong table = cr3 & addressMask;
        int[] shifts = [39, 30, 21, 12];
        for (int level = 0; level < 4; level++)
        {
            ulong e = Entry(table, (va >> shifts[level]) & 511);
            if ((e & 1) == 0) return new Walk(false, 0, false, false, false);
            Assert.True((e >> 63) == 0, $"XD bit set at level {level} with EFER.NXE off (reserved): 0x{e:x}");
            user &= (e & 4) != 0;
            writable &= (e & 2) != 0;
            bool large = level > 0 && (e & 0x80) != 0;
            Assert.False(level == 0 && (e & 0x80) != 0, "PS set in a PML4 entry (reserved)");
            if (large || level == 3)
            {
                int shift = shifts[level];
                ulong pageMask = (1UL << shift) - 1;
                ulong frame = e & addressMask & ~pageMask;
                if (large) Assert.True((e & addressMask & pageMask & ~0x1000UL) == 0, $"reserved bits set in a large-page entry: 0x{e:x}");
                return new Walk(true, frame | (va & pageMask), user, writable, large);
            }
            table = e & addressMask;
        }
        throw new InvalidOperationException("unreachable");
    }

    private static byte[] Build(ulong memorySize)
    {
        var image = new byte[GuestLayout.ReservedSize];
        GuestLayout.Build(image, memorySize);
        return image;
    }

    [Theory]
    [InlineData(4UL << 20)]
    [InlineData(64UL << 20)]
    [InlineData(130UL << 20)]
    [InlineData(1UL << 30)]
    [InlineData((1UL << 30) + (2UL << 20))]
    [InlineData((3UL << 30) + (6UL << 20))]
    [InlineData(64UL << 30)]
    public void Every_RAM_address_maps_to_itself_user_pages_have_U_and_the_reserved_area_does_not(ulong memorySize)
    {
        byte[] image = Build(memorySize);
        for (ulong page = GuestMemory.UserBase; page < memorySize; page += 2UL << 20)
        {
            foreach (ulong offset in (ulong[])[0, 0x1000, 0x1f_fff8])
            {
                ulong va = page + offset;
                var w = Translate(image, GuestLayout.Pml4, va);
                Assert.True(w.Present, $"0x{va:x} is not mapped");
                Assert.Equal(va, w.Physical);
                Assert.True(w.Writable, $"0x{va:x} is not writable");
                Assert.True(w.Large, $"0x{va:x} is not in a 2 MiB page");
                Assert.True(w.User, $"0x{va:x} is not user-accessible");
            }
        }
        for (ulong va = 0; va < GuestMemory.UserBase; va += 0x1000)
        {
            var w = Translate(image, GuestLayout.Pml4, va + 0xff8);
            Assert.True(w.Present, $"0x{va:x} is not mapped");
            Assert.Equal(va + 0xff8, w.Physical);
            Assert.False(w.Large, $"0x{va:x} in the reserved area is not a 4 KiB page");
        }
        // Nothing past RAM: a stray access must #PF, not become an MMIO exit.
        foreach (ulong va in (ulong[])[memorySize, memorySize + 0x1000, memorySize + (2UL << 20), 1UL << 39, 0x7fff_ffff_f000])
            Assert.False(Translate(image, GuestLayout.Pml4, va).Present, $"0x{va:x} past RAM is mapped");
    }

    [Fact]
    public void Guest_address_zero_and_every_platform_structure_are_supervisor_only()
    {
        byte[] image = Build(128UL << 20);
        foreach (ulong va in (ulong[])[0, GuestLayout.Gdt, GuestLayout.Tss, GuestLayout.Idt, GuestLayout.Ist1Frame,
                     GuestLayout.Ist2Top - 8, GuestLayout.Rsp0Top - 8, GuestLayout.Pml4, GuestLayout.Pdpt,
                     GuestLayout.LowPageTable, GuestLayout.PageDirectories, GuestLayout.ReservedSize - 1])
        {
            var w = Translate(image, GuestLayout.Pml4, va);
            Assert.True(w.Present);
            Assert.Equal(va, w.Physical);
            Assert.False(w.User, $"0x{va:x} is user-accessible");
        }
    }

    [Fact]
    public void Only_the_data_pages_the_stub_pages_the_resume_frames_and_the_syscall_stacks_are_user_and_the_stubs_are_read_only()
    {
        byte[] image = Build(128UL << 20);
        var user = new List<ulong>();
        for (ulong va = 0; va < GuestMemory.UserBase; va += 0x1000)
        {
            var w = Translate(image, GuestLayout.Pml4, va);
            if (w.User) user.Add(va);
        }
        Assert.Equal([GuestLayout.DataPage, GuestLayout.SyscallStub, GuestLayout.ResumeFrames, GuestLayout.SyscallStackTop - 0x1000,
            0x14000, 0x15000, 0x16000, 0x17000], user);

        for (int i = 0; i < GuestLayout.MaxVcpus; i++)
        {
            CpuArea cpu = GuestLayout.Cpu(i);
            // Everything the syscall path touches lies in those pages, with the access it needs.
            foreach (ulong va in (ulong[])[cpu.UserRspSave, cpu.FsBaseSave, cpu.GsBaseSave, cpu.SyscallStackTop - 8,
                         cpu.SyscallStackTop - 6 * 8])
            {
                var w = Translate(image, GuestLayout.Pml4, va);
                Assert.True(w.User && w.Writable, $"vCPU {i}: 0x{va:x} must be user read/write");
            }
            // The frame the VMM resumes through: the program can read it (the iretq runs at CPL 3 on kvm_pvm) but no
            // thread of it can rewrite it (on stock KVM the iretq runs at CPL 0: a kernel CS there would enter ring 0).
            foreach (ulong va in (ulong[])[cpu.ResumeFrame, cpu.ResumeFrame + 4 * 8, cpu.SyscallStub, cpu.SyscallStubFsgs + Stubs.SyscallFsgsLength - 1])
            {
                var w = Translate(image, GuestLayout.Pml4, va);
                Assert.True(w.User && !w.Writable, $"vCPU {i}: 0x{va:x} must be user read-only");
            }
            // Its GDT, TSS and exception stacks are the platform's alone.
            foreach (ulong va in (ulong[])[cpu.Gdt, cpu.Tss, cpu.Tss + GuestLayout.TssLimit, cpu.Ist1Frame, cpu.Ist1Top - 1, cpu.Ist2Frame])
                Assert.False(Translate(image, GuestLayout.Pml4, va).User, $"vCPU {i}: 0x{va:x} is user-accessible");
        }
        foreach (ulong va in (ulong[])[GuestLayout.SyscallStub, GuestLayout.SyscallStub + Stubs.SyscallLength - 1,
                     GuestLayout.SyscallStubFsgs, GuestLayout.SyscallStubFsgs + Stubs.SyscallFsgsLength - 1, Stubs.ResumeAddress])
        {
            var w = Translate(image, GuestLayout.Pml4, va);
            Assert.True(w.User, $"0x{va:x} must be user (the stub runs at CPL 3 on kvm_pvm)");
            Assert.False(w.Writable, $"0x{va:x} (code) must be read-only");
        }
    }

    [Fact]
    public void Entries_have_the_documented_bits()
    {
        byte[] image = Build(8UL << 20);
        ulong Q(ulong at) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan((int)at));
        Assert.Equal(GuestLayout.Pdpt | 0x27, Q(GuestLayout.Pml4));                 // P|RW|US|A
        Assert.Equal(GuestLayout.PageDirectories | 0x27, Q(GuestLayout.Pdpt));
        Assert.Equal(GuestLayout.LowPageTable | 0x27, Q(GuestLayout.PageDirectories)); // the 4 KiB table of the first 2 MiB
        Assert.Equal(0x0UL | 0x63, Q(GuestLayout.LowPageTable));                      // P|RW|A|D, no US
        Assert.Equal(0x3000UL | 0x67, Q(GuestLayout.LowPageTable + 3 * 8));           // data page: P|RW|US|A|D
        Assert.Equal(0x4000UL | 0x65, Q(GuestLayout.LowPageTable + 4 * 8));           // stubs: P|US|A|D, read-only
        Assert.Equal(0x5000UL | 0x65, Q(GuestLayout.LowPageTable + 5 * 8));           // resume frames: read-only
        Assert.Equal(0x7000UL | 0x63, Q(GuestLayout.LowPageTable + 7 * 8));
        Assert.Equal(0x6000UL | 0x67, Q(GuestLayout.LowPageTable + 6 * 8));           // syscall stack
        Assert.Equal(0x1ff000UL | 0x63, Q(GuestLayout.LowPageTable + 511 * 8));
        Assert.Equal(0x200000UL | 0xe7, Q(GuestLayout.PageDirectories + 8));       // P|RW|US|A|D|PS
        Assert.Equal(0x600000UL | 0xe7, Q(GuestLayout.PageDirectories + 24));
        Assert.Equal(0UL, Q(GuestLayout.PageDirectories + 32));                    // 8 MiB: 4 entries only
        Assert.Equal(0UL, Q(GuestLayout.Pml4 + 8));
        Assert.Equal(0UL, Q(GuestLayout.Pdpt + 8));
    }

    [Fact]
    public void The_image_depends_only_on_the_RAM_size()
    {
        Assert.Equal(Build(256UL << 20), Build(256UL << 20));
        Assert.NotEqual(Build(256UL << 20), Build(258UL << 20));
    }

    [Fact]
    public void Too_much_RAM_is_refused_with_a_clear_message()
    {
        var image = new byte[GuestLayout.ReservedSize];
        var e = Assert.Throws<SandboxException>(() => GuestLayout.Build(image, GuestLayout.MaxMemory + (2UL << 20)));
        Assert.Contains("GiB", e.Message);
        GuestLayout.Build(image, GuestLayout.MaxMemory); // the limit itself fits
        Assert.Equal(256, PageTables.DirectoryCount(GuestLayout.MaxMemory));
    }
}
