using System.Buffers.Binary;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Kvm;
using Remus.Tests.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>
/// A right the VMM takes away in the guest's page tables (<see cref="KvmPlatformVcpu.ProtectRange"/>) holds at once,
/// even for a page the program has just used, whose translation the vCPU has cached: on stock KVM in its TLB, on
/// kvm_pvm in its shadow page tables (<see cref="TlbFlush"/>). Each test lets a tiny ring-3 loop touch a page, takes
/// the right away between two of its syscalls, and expects the very next access to fault; then gives the right back
/// and expects the loop to go on with the page's content intact (the kvm_pvm flush drops host mappings of the page).
/// Without the flush the loop's next access goes through on kvm_pvm (measured: the syscall exit comes instead of the
/// fault). In kvm-lab the emulated VM entry flushes everything itself, so there these pass even without it.
/// </summary>
public sealed class TlbFlushTests
{
    private const ulong Code = 0x400000;
    private const ulong StackTop = 0x7ff000;
    private const ulong Page = 0x500000;
    private const ulong Value = 0x1122334455667788;
    private const int Unmapped = -1, ProtNone = 0, ProtRead = 1, ProtReadWrite = 3;
    private const int SEGV_MAPERR = 1, SEGV_ACCERR = 2;

    //  0: 48 8b 1c 25 00 00 50 00   mov rbx, [0x500000]
    //  8: b8 01 00 00 00            mov eax, 1
    //  d: 0f 05                     syscall
    //  f: eb ef                     jmp 0
    private static readonly byte[] ReadLoop = [0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 0x01, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xef];

    //  0: 48 89 1c 25 00 00 50 00   mov [0x500000], rbx
    //  8: b8 01 00 00 00            mov eax, 1
    //  d: 0f 05                     syscall
    //  f: eb ef                     jmp 0
    private static readonly byte[] WriteLoop = [0x48, 0x89, 0x1c, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 0x01, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xef];

    //  0: 48 8b 1c 25 00 00 60 00   mov rbx, [0x600000]
    //  8: 0f 05                     syscall
    //  a: 48 8b 34 25 00 00 80 00   mov rsi, [0x800000]
    // 12: 0f 05                     syscall
    // 14: 48 8b 14 25 00 00 60 00   mov rdx, [0x600000]
    // 1c: 0f 05                     syscall
    // 1e: eb fe                     jmp $
    private static readonly byte[] ThreeReads =
    [
        0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00, 0x0f, 0x05,
        0x48, 0x8b, 0x34, 0x25, 0x00, 0x00, 0x80, 0x00, 0x0f, 0x05,
        0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x60, 0x00, 0x0f, 0x05, 0xeb, 0xfe,
    ];

    private sealed class Guest : IDisposable
    {
        public GuestMemory Memory { get; }
        public KvmPlatformVcpu Vcpu { get; }

        public Guest(byte[] code, ulong memorySize = 8UL << 20)
        {
            Memory = new GuestMemory(memorySize);
            Memory.Write(Code, code);
            Span<byte> v = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(v, Value);
            Memory.Write(Page, v);
            Vcpu = new KvmPlatformVcpu(Memory);
            ref var r = ref Vcpu.Regs;
            r.Rip = Code;
            r.Rsp = StackTop;
            r.Rbx = Value;
            r.Eflags = 0x202;
        }

        public ulong PageValue => BinaryPrimitives.ReadUInt64LittleEndian(Memory.Span(Page, 8));

        public void Put(ulong address, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Memory.Physical(address, 8), value);

        public void Dispose()
        {
            Vcpu.Dispose();
            Memory.Dispose();
        }
    }

    private static VcpuExit PageFault(ulong address, int code, ulong error) => new(VcpuExitKind.Fault, 11, address, code, 14, error);

    [KvmTheory]
    [InlineData(Unmapped)]
    [InlineData(ProtNone)]
    public void A_page_taken_away_right_after_a_read_faults_at_the_next_read(int prot)
    {
        using var g = new Guest(ReadLoop);
        for (int round = 0; round < 10; round++)
        {
            g.Vcpu.Regs.Rbx = 0;
            Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run()); // the page was read: its translation is cached now
            Assert.Equal(Value, g.Vcpu.Regs.Rbx);

            g.Vcpu.ProtectRange(Page, 4096, prot);
            Assert.True(g.Vcpu.Tlb.Pending, "taking a right away must owe a flush");
            Assert.Equal(PageFault(Page, SEGV_MAPERR, 4), g.Vcpu.Run()); // user read, not present
            Assert.Equal(Code, g.Vcpu.Regs.Rip);

            g.Vcpu.ProtectRange(Page, 4096, ProtReadWrite);
            Assert.False(g.Vcpu.Tlb.Pending, "giving a right back needs no flush");
        }
        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run()); // the faulting read, retried
        Assert.Equal(Value, g.Vcpu.Regs.Rbx);             // the content survived the flushes
    }

    [KvmFact]
    public void A_page_made_read_only_right_after_a_write_faults_at_the_next_write()
    {
        using var g = new Guest(WriteLoop);
        for (int round = 0; round < 10; round++)
        {
            g.Vcpu.Regs.Rbx = Value + (ulong)round;
            Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run()); // written: a writable translation is cached now
            Assert.Equal(Value + (ulong)round, g.PageValue);

            g.Vcpu.ProtectRange(Page, 4096, ProtRead);
            g.Vcpu.Regs.Rbx = 0xdead;
            Assert.Equal(PageFault(Page, SEGV_ACCERR, 7), g.Vcpu.Run()); // user write to a present page
            Assert.Equal(Value + (ulong)round, g.PageValue);           // the write did not happen

            g.Vcpu.ProtectRange(Page, 4096, ProtReadWrite);
        }
    }

    [KvmFact]
    public void Unmapping_a_range_around_the_page_faults_and_mapping_it_again_keeps_its_content()
    {
        using var g = new Guest(ReadLoop);
        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run());
        // 64 pages either side of it: one retired range of 128 pages.
        g.Vcpu.ProtectRange(Page - 64 * 4096, 128 * 4096, Unmapped);
        Assert.Equal(PageFault(Page, SEGV_MAPERR, 4), g.Vcpu.Run());
        g.Vcpu.ProtectRange(Page - 64 * 4096, 128 * 4096, ProtRead);
        g.Vcpu.Regs.Rbx = 0;
        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run());
        Assert.Equal(Value, g.Vcpu.Regs.Rbx);
    }

    /// <summary>
    /// An upper-level change: region 3 (0x600000) is mapped through table A; after the program has read it, the VMM
    /// points region 3 at table B (other frames) and region 4 (a 2 MiB page) at table A, retiring the frames whose
    /// translations went away and the tables. The program then reads region 4 (through A) and region 3 (through B).
    /// On kvm_pvm a zap of the frames alone is not enough (A's shadow copy stays linked under region 3 and is found
    /// again for region 4, so the second read of region 3 returned region 4's data, measured with the probe);
    /// <see cref="TlbFlush.RetireTables"/> re-adds the memory slot.
    /// </summary>
    [KvmFact]
    public void Pointing_a_region_at_another_table_takes_effect_once_the_tables_are_retired()
    {
        const ulong pd = GuestLayout.PageDirectories, tableA = 0x1000000, tableB = 0x1001000, framesB = 0x1200000;
        using var g = new Guest(ThreeReads, 32UL << 20);
        g.Vcpu.StartDirtyLog();
        for (ulong e = 0; e < 512; e++)
        {
            g.Put(tableA + e * 8, (0x600000 + (e << 12)) | PageTables.UserSmallPageFlags);
            g.Put(tableB + e * 8, (framesB + (e << 12)) | PageTables.UserSmallPageFlags);
        }
        g.Put(pd + 3 * 8, tableA | PageTables.TableEntryFlags);
        g.Put(0x600000, 0xf0f0);
        g.Put(0x800000, 0x8080);
        g.Put(framesB, 0x6060);

        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run());
        Assert.Equal(0xf0f0UL, g.Vcpu.Regs.Rbx);

        g.Put(pd + 3 * 8, tableB | PageTables.TableEntryFlags);
        g.Put(pd + 4 * 8, tableA | PageTables.TableEntryFlags);
        g.Vcpu.Tlb.Retire(0x600000, 2 << 20);
        g.Vcpu.Tlb.Retire(0x800000, 2 << 20);
        g.Vcpu.Tlb.RetireTables();
        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run());
        Assert.Equal(0xf0f0UL, g.Vcpu.Regs.Rsi); // region 4 through table A
        Assert.Equal(VcpuExit.SyscallExit, g.Vcpu.Run());
        Assert.Equal(0x6060UL, g.Vcpu.Regs.Rdx); // region 3 through table B
    }

    /// <summary>Re-adding the slot (<see cref="TlbFlush.RetireTables"/> on kvm_pvm) throws KVM's dirty bitmap away; a
    /// page the vCPU wrote before must still be reported by the next harvest, and pages written after it too.</summary>
    [KvmTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Retiring_the_tables_keeps_what_the_dirty_log_saw(bool manualProtect)
    {
        var mode = manualProtect ? KvmDirtyLogMode.ManualProtect : KvmDirtyLogMode.GetDirtyLog;
        using var memory = new GuestMemory(8UL << 20);
        memory.Write(Code, WriteLoop);
        using var vcpu = new KvmPlatformVcpu(memory, mode);
        vcpu.Regs.Rip = Code;
        vcpu.Regs.Rsp = StackTop;
        vcpu.Regs.Rbx = Value;
        vcpu.Regs.Eflags = 0x202;
        vcpu.StartDirtyLog();
        var dirty = new ulong[(8 << 20) / 4096 / 64];
        int word = (int)(Page / 4096 / 64), bit = (int)(Page / 4096 % 64);

        Assert.Equal(VcpuExit.SyscallExit, vcpu.Run()); // writes the page
        vcpu.Tlb.RetireTables();
        vcpu.Regs.Rip = Code + 8;                        // straight to the syscall: no write this time
        Assert.Equal(VcpuExit.SyscallExit, vcpu.Run());  // the slot was re-added before this run (on kvm_pvm)
        vcpu.HarvestDirty(dirty);
        Assert.True((dirty[word] & (1UL << bit)) != 0, "the write before the slot was re-added was lost from the dirty log");

        Array.Clear(dirty);
        vcpu.Regs.Rip = Code;
        Assert.Equal(VcpuExit.SyscallExit, vcpu.Run()); // writes it again: the re-added slot logs
        vcpu.HarvestDirty(dirty);
        Assert.True((dirty[word] & (1UL << bit)) != 0, "the re-added slot does not log writes");
    }
}
