using System.Buffers.Binary;
using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>GDT, TSS and IDT bit patterns (SDM vol. 3A 3.4.5, 7.2.3, 7.7, 6.14.1) against known-good values.</summary>
public sealed class DescriptorTests
{
    private static readonly byte[] Image = BuildImage();

    private static byte[] BuildImage()
    {
        var image = new byte[GuestLayout.ReservedSize];
        GuestLayout.Build(image, 64UL << 20);
        return image;
    }

    private static ulong Q(ulong at) => BinaryPrimitives.ReadUInt64LittleEndian(Image.AsSpan((int)at));

    [Fact]
    public void Code_and_data_descriptors_are_the_ones_of_ring3_probe()
    {
        // /work/shared/probes/ring3-probe.c: gdt[1..4]
        Assert.Equal(0UL, Q(GuestLayout.Gdt));
        Assert.Equal(0x00af9b000000ffffUL, Q(GuestLayout.Gdt + 0x08)); // kernel code
        Assert.Equal(0x00cf93000000ffffUL, Q(GuestLayout.Gdt + 0x10)); // kernel data
        Assert.Equal(0x00cff3000000ffffUL, Q(GuestLayout.Gdt + 0x18)); // user data
        Assert.Equal(0x00affb000000ffffUL, Q(GuestLayout.Gdt + 0x20)); // user code
        Assert.Equal(7 * 8 - 1, GuestLayout.GdtLimit);
    }

    [Fact]
    public void Descriptor_fields_decode_as_intended()
    {
        static (byte Access, int Flags) Decode(ulong d) => ((byte)(d >> 40), (int)(d >> 52) & 0xf);
        // access byte: P | DPL | S | type ; flags: G | D/B | L | AVL
        Assert.Equal((0x9b, 0xa), Decode(Descriptors.KernelCode)); // P, DPL0, code X/R accessed; G, L
        Assert.Equal((0x93, 0xc), Decode(Descriptors.KernelData)); // P, DPL0, data R/W accessed; G, D/B
        Assert.Equal((0xf3, 0xc), Decode(Descriptors.UserData));   // P, DPL3
        Assert.Equal((0xfb, 0xa), Decode(Descriptors.UserCode));   // P, DPL3, 64-bit
    }

    [Fact]
    public void Selectors_fit_syscall_and_sysret_through_STAR()
    {
        ulong star = GuestLayout.Star;
        ushort syscallCs = (ushort)(star >> 32), sysretBase = (ushort)(star >> 48);
        Assert.Equal(GuestLayout.KernelCode, syscallCs);
        Assert.Equal(GuestLayout.KernelData, (ushort)(syscallCs + 8));                 // syscall SS
        Assert.Equal(GuestLayout.UserCode, (ushort)((sysretBase + 16) | 3));           // 64-bit sysret CS
        Assert.Equal(GuestLayout.UserData, (ushort)((sysretBase + 8) | 3));            // sysret SS
        Assert.Equal(Descriptors.UserCode, Q(GuestLayout.Gdt + (GuestLayout.UserCode & ~7UL)));
        Assert.Equal(Descriptors.UserData, Q(GuestLayout.Gdt + (GuestLayout.UserData & ~7UL)));
    }

    [Fact]
    public void TSS_descriptor_is_a_busy_64_bit_TSS_at_the_TSS()
    {
        ulong low = Q(GuestLayout.Gdt + GuestLayout.TssSelector), high = Q(GuestLayout.Gdt + GuestLayout.TssSelector + 8);
        ulong limit = (low & 0xffff) | ((low >> 32) & 0xf0000);
        ulong baseAddress = ((low >> 16) & 0xffffff) | (((low >> 56) & 0xff) << 24) | (high << 32);
        Assert.Equal(0x70UL, limit); // 104-byte TSS + 8-byte I/O bitmap + terminator
        Assert.Equal(GuestLayout.Tss, baseAddress);
        Assert.Equal(0x8bUL, (low >> 40) & 0xff);   // P=1, DPL=0, S=0, type 1011 (busy 64-bit TSS)
        Assert.Equal(0UL, (low >> 52) & 0xf);        // G=0
        Assert.Equal(0x0000_8b00_1800_0070UL, low);
        Assert.Equal(0UL, high);
    }

    [Fact]
    public void TSS_has_RSP0_the_IST_stacks_and_an_IO_bitmap_that_allows_port_0x20_only()
    {
        byte[] tss = Image.AsSpan((int)GuestLayout.Tss, (int)GuestLayout.TssLimit + 1).ToArray();
        Assert.Equal(GuestLayout.Rsp0Top, BinaryPrimitives.ReadUInt64LittleEndian(tss[4..]));
        Assert.Equal(GuestLayout.Ist1Top, BinaryPrimitives.ReadUInt64LittleEndian(tss[36..]));
        Assert.Equal(GuestLayout.Ist2Top, BinaryPrimitives.ReadUInt64LittleEndian(tss[44..]));
        ushort ioMap = BinaryPrimitives.ReadUInt16LittleEndian(tss[102..]);
        Assert.Equal(104, ioMap);
        // The CPU's check (SDM vol. 1, 19.5.2): port p is allowed when bit p of the bitmap is clear and the bytes it
        // reads (p/8 and the next) lie within the TSS limit. Only port 0x20 passes; everything else stays a #GP.
        bool Allowed(int port, int size)
        {
            int first = ioMap + port / 8;
            if (first + 1 > GuestLayout.TssLimit) return false;
            int bits = tss[first] | (tss[first + 1] << 8);
            int mask = ((1 << size) - 1) << (port % 8);
            return (bits & mask) == 0;
        }
        for (int port = 0; port < 0x10000; port++)
            Assert.Equal(port == GuestLayout.SyscallPort, Allowed(port, 1));
        Assert.False(Allowed(0x1f, 2)); // a wider access that includes a denied port is denied
        Assert.False(Allowed(0x20, 2));
        Assert.Equal(0xff, tss[(int)GuestLayout.TssLimit]); // the terminator, the last byte within the limit
        // Stacks are 16-byte aligned (the CPU aligns rsp before pushing an interrupt frame in 64-bit mode).
        foreach (ulong top in (ulong[])[GuestLayout.Rsp0Top, GuestLayout.Ist1Top, GuestLayout.Ist2Top, GuestLayout.SyscallStackTop])
            Assert.Equal(0UL, top % 16);
    }

    [Fact]
    public void Every_vCPU_has_its_own_GDT_whose_TSS_descriptor_names_its_own_TSS_with_its_own_stacks()
    {
        byte[] vcpu0Tss = Image.AsSpan((int)GuestLayout.Tss, (int)GuestLayout.TssLimit + 1).ToArray();
        var stacks = new HashSet<ulong>();
        for (int i = 0; i < GuestLayout.MaxVcpus; i++)
        {
            CpuArea cpu = GuestLayout.Cpu(i);
            for (int e = 1; e < 5; e++) Assert.Equal(Q(GuestLayout.Gdt + (ulong)e * 8), Q(cpu.Gdt + (ulong)e * 8));
            ulong low = Q(cpu.Gdt + GuestLayout.TssSelector), high = Q(cpu.Gdt + GuestLayout.TssSelector + 8);
            ulong baseAddress = ((low >> 16) & 0xffffff) | (((low >> 56) & 0xff) << 24) | (high << 32);
            Assert.Equal(cpu.Tss, baseAddress);
            byte[] tss = Image.AsSpan((int)cpu.Tss, (int)GuestLayout.TssLimit + 1).ToArray();
            Assert.Equal(cpu.Ist1Top, BinaryPrimitives.ReadUInt64LittleEndian(tss.AsSpan(36)));
            Assert.Equal(cpu.Ist2Top, BinaryPrimitives.ReadUInt64LittleEndian(tss.AsSpan(44)));
            Assert.Equal(vcpu0Tss[100..], tss[100..]); // the same I/O bitmap
            foreach (ulong top in (ulong[])[cpu.Ist1Top, cpu.Ist2Top, cpu.Rsp0Top, cpu.SyscallStackTop]) Assert.Equal(0UL, top % 16);
            Assert.True(stacks.Add(cpu.Ist1Top) && stacks.Add(cpu.Ist2Top), $"vCPU {i} shares an exception stack");
            // The exception stacks hold the CPU's frame and error code without reaching the GDT, the TSS or each other.
            (ulong, ulong)[] parts =
                [(cpu.Gdt, cpu.Gdt + GuestLayout.GdtEntries * 8UL), (cpu.Tss, cpu.Tss + GuestLayout.TssLimit + 1),
                 (cpu.Ist1Top - 6 * 8, cpu.Ist1Top), (cpu.Ist2Top - 6 * 8, cpu.Ist2Top)];
            foreach (var a in parts)
                foreach (var b in parts)
                    Assert.True(a == b || a.Item2 <= b.Item1 || b.Item2 <= a.Item1, $"vCPU {i}: 0x{a.Item1:x} overlaps 0x{b.Item1:x}");
        }
    }

    [Fact]
    public void Every_IDT_gate_is_a_present_interrupt_gate_to_its_stub()
    {
        Assert.Equal(32 * 16 - 1, GuestLayout.IdtLimit);
        for (int v = 0; v < 32; v++)
        {
            ulong low = Q(GuestLayout.Idt + (ulong)v * 16), high = Q(GuestLayout.Idt + (ulong)v * 16 + 8);
            ulong offset = (low & 0xffff) | (((low >> 48) & 0xffff) << 16) | ((high & 0xffffffff) << 32);
            Assert.Equal(Stubs.ExceptionStubAddress(v), offset);
            Assert.Equal(GuestLayout.KernelCode, (ushort)(low >> 16));
            int ist = (int)(low >> 32) & 7;
            Assert.Equal(v == 8 ? 2 : 1, ist);
            Assert.Equal(0UL, (low >> 35) & 0x1f);          // bits 39:35 of the second dword: zero
            byte attr = (byte)(low >> 40);
            Assert.Equal(0x80, attr & 0x80);                 // present
            Assert.Equal(0, attr & 0x10);                    // system descriptor (S=0)
            Assert.Equal(0xe, attr & 0xf);                   // 64-bit interrupt gate
            Assert.Equal(v is 3 or 4 ? 3 : 0, (attr >> 5) & 3);
            Assert.Equal(0UL, high >> 32);                   // reserved
        }
        // Known encodings: vector 14 (#PF) -> stub 0x48e0, IST1, DPL 0 ; vector 3 (#BP) -> 0x4830, IST1, DPL 3.
        Assert.Equal(0x0000_8e01_0008_48e0UL, Q(GuestLayout.Idt + 14 * 16));
        Assert.Equal(0x0000_ee01_0008_4830UL, Q(GuestLayout.Idt + 3 * 16));
        Assert.Equal(0x0000_8e02_0008_4880UL, Q(GuestLayout.Idt + 8 * 16)); // #DF on IST2
    }

    [Fact]
    public void Regions_of_the_reserved_area_do_not_overlap()
    {
        (ulong Start, ulong End, string Name)[] regions =
        [
            (GuestLayout.Gdt, GuestLayout.Gdt + GuestLayout.GdtEntries * 8UL, "GDT"),
            (GuestLayout.Tss, GuestLayout.Tss + GuestLayout.TssLimit + 1, "TSS and I/O bitmap"),
            (GuestLayout.Idt, GuestLayout.Idt + 32 * 16, "IDT"),
            (GuestLayout.DataPage, GuestLayout.GsBaseSave + 8, "data"),
            (GuestLayout.SyscallStub, GuestLayout.SyscallStub + Stubs.SyscallLength, "syscall stub"),
            (GuestLayout.SyscallStubFsgs, GuestLayout.SyscallStubFsgs + Stubs.SyscallFsgsLength, "FSGSBASE syscall stub"),
            (GuestLayout.ExceptionStubs, GuestLayout.ExceptionStubs + 32 * 16, "exception stubs"),
            (GuestLayout.SyscallStackTop - 4096, GuestLayout.SyscallStackTop, "syscall stack"),
            (GuestLayout.Ist1Top - 4096, GuestLayout.Ist1Top, "IST1"),
            (GuestLayout.Ist2Top - 4096, GuestLayout.Ist2Top, "IST2"),
            (GuestLayout.Rsp0Top - 4096, GuestLayout.Rsp0Top, "RSP0 stack"),
            (GuestLayout.ResumeFrames, GuestLayout.ResumeFrames + GuestLayout.MaxVcpus * 64UL, "resume frames"),
            (GuestLayout.SiblingStubs, GuestLayout.SiblingUser, "syscall stubs of vCPUs 1-63"),
            (GuestLayout.SiblingUser, GuestLayout.SiblingSystem, "data and syscall stacks of vCPUs 1-63"),
            (GuestLayout.SiblingSystem, GuestLayout.PageTablePool, "GDTs, TSSs and IST stacks of vCPUs 1-63"),
            (GuestLayout.PageTablePool, GuestLayout.PageTablePool + GuestLayout.PageTablePoolPages * 4096UL, "page-table pool"),
            (GuestLayout.Pml4, GuestLayout.Pml4 + 4096, "PML4"),
            (GuestLayout.Pdpt, GuestLayout.Pdpt + 4096, "PDPT"),
            (GuestLayout.LowPageTable, GuestLayout.LowPageTable + 4096, "page table of the first 2 MiB"),
            (GuestLayout.PageDirectories, GuestLayout.ReservedSize, "page directories"),
        ];
        foreach (var a in regions)
        {
            Assert.True(a.Start >= 0x1000 && a.End <= GuestLayout.ReservedSize, $"{a.Name} outside the reserved area");
            foreach (var b in regions)
                if (a.Name != b.Name) Assert.False(a.Start < b.End && b.Start < a.End, $"{a.Name} overlaps {b.Name}");
        }
    }
}
