using System.Buffers.Binary;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// GDT, 64-bit TSS and IDT (Intel SDM vol. 3A, 3.4.5 "Segment Descriptors", 7.2.3 "TSS Descriptor in 64-bit mode",
/// 7.7 "Task Management in 64-bit Mode", 6.14.1 "64-Bit Mode IDT").
/// </summary>
internal static class Descriptors
{
    // The four code/data descriptors of ring3-probe.c (known to work), all with the accessed bit preset so the CPU
    // never writes the GDT:
    //   base 0, limit 0xfffff, G=1;  access byte P|DPL|S|type;  flags nibble G|D/B|L.
    /// <summary>0x9b: P, DPL 0, code execute/read accessed; flags 0xa: G, L (64-bit).</summary>
    public const ulong KernelCode = 0x00af9b000000ffff;
    /// <summary>0x93: P, DPL 0, data read/write accessed; flags 0xc: G, D/B.</summary>
    public const ulong KernelData = 0x00cf93000000ffff;
    /// <summary>0xf3: P, DPL 3, data read/write accessed; flags 0xc: G, D/B.</summary>
    public const ulong UserData = 0x00cff3000000ffff;
    /// <summary>0xfb: P, DPL 3, code execute/read accessed; flags 0xa: G, L (64-bit).</summary>
    public const ulong UserCode = 0x00affb000000ffff;

    /// <summary>System segment type 0xb: busy 64-bit TSS (TR is loaded through KVM_SET_SREGS as if by ltr, which
    /// marks it busy; VM entry requires a busy TSS in TR).</summary>
    public const byte TssBusyType = 0xb;
    /// <summary>Gate type 0xe: 64-bit interrupt gate (clears IF on entry).</summary>
    public const byte InterruptGateType = 0xe;

    /// <summary>The GDT as 7 quadwords: null, kernel code, kernel data, user data, user code, TSS low, TSS high.</summary>
    public static ulong[] Gdt() => Gdt(GuestLayout.Cpu0);

    /// <summary>vCPU <paramref name="cpu"/>'s GDT: the same, with the TSS descriptor naming its own TSS.</summary>
    public static ulong[] Gdt(CpuArea cpu)
    {
        var (tssLow, tssHigh) = TssDescriptor(cpu.Tss, GuestLayout.TssLimit);
        return [0, KernelCode, KernelData, UserData, UserCode, tssLow, tssHigh];
    }

    /// <summary>A 16-byte 64-bit TSS descriptor: busy, present, DPL 0, byte granularity.</summary>
    public static (ulong Low, ulong High) TssDescriptor(ulong baseAddress, uint limit)
    {
        ulong low = (limit & 0xffffUL)
                    | ((baseAddress & 0xffffffUL) << 16)          // base 23:0
                    | ((ulong)(0x80 | TssBusyType) << 40)         // P=1, DPL=0, S=0, type
                    | ((ulong)((limit >> 16) & 0xf) << 48)        // limit 19:16, G=0
                    | (((baseAddress >> 24) & 0xff) << 56);       // base 31:24
        ulong high = baseAddress >> 32;                           // base 63:32, rest reserved 0
        return (low, high);
    }

    /// <summary>A 16-byte IDT gate: offset, code selector, IST index (0-7), type, DPL, present.</summary>
    public static (ulong Low, ulong High) Gate(ulong offset, ushort selector, int ist, int dpl, byte type = InterruptGateType)
    {
        ulong low = (offset & 0xffff)
                    | ((ulong)selector << 16)
                    | ((ulong)(ist & 7) << 32)
                    | ((ulong)(0x80 | ((dpl & 3) << 5) | type) << 40)
                    | (((offset >> 16) & 0xffff) << 48);
        ulong high = offset >> 32;
        return (low, high);
    }

    /// <summary>IST index of vector <paramref name="vector"/>: 2 for #DF (its own stack), 1 for everything else.</summary>
    public static int IstOf(int vector) => vector == 8 ? 2 : 1;

    /// <summary>Gate DPL: 3 for #BP and #OF so that int3/into from ring 3 raise them (Linux does the same); 0 for the
    /// rest, so "int n" from ring 3 is a #GP (SIGSEGV) instead of a fake exception.</summary>
    public static int DplOf(int vector) => vector is 3 or 4 ? 3 : 0;

    /// <summary>
    /// The 104-byte 64-bit TSS (RSP0, IST1 for exceptions, IST2 for #DF) followed by an I/O permission bitmap that
    /// denies every port but <see cref="GuestLayout.SyscallPort"/>, and its 0xff terminator (SDM vol. 1, 19.5.2).
    /// On stock KVM the syscall stub's <c>out</c> runs at CPL 0 and needs no bitmap; on kvm_pvm it runs at CPL 3 (issue
    /// 7 facts 1-2) and, with IOPL 0, the CPU consults the bitmap: without one it took #GP(0). The program can then
    /// write port 0x20 itself too; the vCPU treats such an exit as a syscall only when it comes from the stub's own
    /// <c>out</c> (<see cref="SyscallExits"/>). Every other port stays a #GP from ring 3.
    /// </summary>
    public static void WriteTss(Span<byte> tss) => WriteTss(tss, GuestLayout.Cpu0);

    /// <summary>vCPU <paramref name="cpu"/>'s TSS: its own RSP0 and IST stacks.</summary>
    public static void WriteTss(Span<byte> tss, CpuArea cpu)
    {
        tss[..(int)(GuestLayout.TssLimit + 1)].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(tss[4..], cpu.Rsp0Top);            // RSP0
        BinaryPrimitives.WriteUInt64LittleEndian(tss[36..], cpu.Ist1Top);           // IST1
        BinaryPrimitives.WriteUInt64LittleEndian(tss[44..], cpu.Ist2Top);           // IST2
        BinaryPrimitives.WriteUInt16LittleEndian(tss[102..], GuestLayout.TssSize);  // I/O map base: right after the TSS
        var bitmap = tss.Slice(GuestLayout.TssSize, GuestLayout.IoBitmapSize + 1);
        bitmap.Fill(0xff);                                                          // 1 = denied; the last byte terminates
        bitmap[GuestLayout.SyscallPort / 8] &= unchecked((byte)~(1 << (GuestLayout.SyscallPort % 8)));
    }

    /// <summary>Writes every vCPU's GDT and TSS, and the shared IDT, into the reserved area (guest-physical bytes
    /// from 0).</summary>
    public static void Write(Span<byte> reserved)
    {
        reserved.Slice((int)GuestLayout.Gdt, 4096).Clear();
        for (int c = 0; c < GuestLayout.MaxVcpus; c++)
        {
            CpuArea cpu = GuestLayout.Cpu(c);
            var gdt = Gdt(cpu);
            for (int i = 0; i < gdt.Length; i++)
                BinaryPrimitives.WriteUInt64LittleEndian(reserved[((int)cpu.Gdt + i * 8)..], gdt[i]);
            WriteTss(reserved.Slice((int)cpu.Tss, (int)GuestLayout.TssLimit + 1), cpu);
        }

        reserved.Slice((int)GuestLayout.Idt, 4096).Clear();
        for (int v = 0; v < GuestLayout.IdtVectors; v++)
        {
            var (low, high) = Gate(Stubs.ExceptionStubAddress(v), GuestLayout.KernelCode, IstOf(v), DplOf(v));
            BinaryPrimitives.WriteUInt64LittleEndian(reserved[((int)GuestLayout.Idt + v * 16)..], low);
            BinaryPrimitives.WriteUInt64LittleEndian(reserved[((int)GuestLayout.Idt + v * 16 + 8)..], high);
        }
    }
}
