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

    private sealed class Guest : IDisposable
    {
        public GuestMemory Memory { get; }
        public KvmPlatformVcpu Vcpu { get; }

        public Guest(byte[] code)
        {
            Memory = new GuestMemory(8UL << 20);
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
}
