using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Remus.Kvm;

namespace Remus.Tests.Kvm;

/// <summary>
/// A tiny long-mode VM as in /work/shared/probes/ring3-probe.c: 4 MiB of RAM identity-mapped with 2 MiB pages,
/// GDT (null, kernel code 0x08, kernel data 0x10, user data 0x18, user code 0x20), user code at 0x10000 running in
/// ring 3, and a ring-0 syscall stub at LSTAR that saves the user rsp, switches to a kernel stack, builds an iretq
/// frame, exits with <c>out 0x20, al</c> and returns with <c>iretq</c>.
/// </summary>
internal sealed class LongModeGuest : IDisposable
{
    public const ulong MemorySize = 4 << 20;
    public const ulong GdtAddress = 0x1000;
    public const ulong Pml4Address = 0x2000;
    public const ulong UserRspSave = 0x8000;
    public const ulong KernelStackTop = 0x9000;
    public const ulong UserCode = 0x10000;
    public const ulong SyscallStub = 0x20000;
    public const ulong UserStackTop = 0x300000;
    public const ushort ExitPort = 0x20;

    private readonly byte[] _backing;
    private readonly int _offset;

    public LongModeGuest(KvmSystem kvm, ReadOnlySpan<byte> userCode)
    {
        // Page-aligned guest RAM from a pinned array (KVM needs a page-aligned host address).
        _backing = GC.AllocateArray<byte>((int)MemorySize + 4096, pinned: true);
        nint raw = Marshal.UnsafeAddrOfPinnedArrayElement(_backing, 0);
        _offset = (int)((4096 - (raw % 4096)) % 4096);
        HostAddress = raw + _offset;
        WriteImage(userCode);

        Cpuid = kvm.GetSupportedCpuid();
        Vm = kvm.CreateVm();
        Vm.SetTssAddress(0xfffbd000);
        Vm.SetUserMemoryRegion(0, 0, MemorySize, HostAddress);
        Vcpu = Vm.CreateVcpu(0);
        Vcpu.SetCpuid2(Cpuid);
        SetupVcpu(Vcpu);
    }

    public nint HostAddress { get; }
    public KvmCpuidEntry2[] Cpuid { get; }
    public KvmVm Vm { get; }
    public KvmVcpu Vcpu { get; }

    public Span<byte> Memory => _backing.AsSpan(_offset, (int)MemorySize);

    private void WriteImage(ReadOnlySpan<byte> userCode)
    {
        var mem = Memory;
        // PML4[0] -> PDPT at 0x3000, PDPT[0] -> PD at 0x4000, PD[0..1]: 2 MiB user pages (P|RW|US|PS).
        BinaryPrimitives.WriteUInt64LittleEndian(mem[(int)Pml4Address..], 0x3000 | 7);
        BinaryPrimitives.WriteUInt64LittleEndian(mem[0x3000..], 0x4000 | 7);
        for (int i = 0; i < (int)(MemorySize >> 21); i++)
            BinaryPrimitives.WriteUInt64LittleEndian(mem[(0x4000 + i * 8)..], ((ulong)i << 21) | 0x87);
        // GDT
        ulong[] gdt = [0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x00cff3000000ffff, 0x00affb000000ffff];
        for (int i = 0; i < gdt.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(mem[((int)GdtAddress + i * 8)..], gdt[i]);
        userCode.CopyTo(mem[(int)UserCode..]);
        byte[] stub =
        [
            0x48, 0x89, 0x24, 0x25, 0x00, 0x80, 0x00, 0x00, // mov [0x8000], rsp: save the user rsp
            0x48, 0xc7, 0xc4, 0x00, 0x90, 0x00, 0x00,       // mov rsp, 0x9000: kernel stack
            0x6a, 0x1b,                                     // push user ss
            0xff, 0x34, 0x25, 0x00, 0x80, 0x00, 0x00,       // push qword [0x8000]: user rsp
            0x41, 0x53,                                     // push r11: user rflags
            0x6a, 0x23,                                     // push user cs
            0x51,                                           // push rcx: user rip
            0xe6, 0x20,                                     // out 0x20, al: exit to the VMM
            0x48, 0xcf,                                     // iretq
        ];
        stub.CopyTo(mem[(int)SyscallStub..]);
    }

    private static void SetupVcpu(KvmVcpu vcpu)
    {
        var s = vcpu.GetSregs();
        var cs = new KvmSegment { Limit = 0xffffffff, Selector = 0x23, Present = 1, Type = 11, Dpl = 3, S = 1, L = 1, G = 1 };
        var ds = new KvmSegment { Limit = 0xffffffff, Selector = 0x1b, Present = 1, Type = 3, Dpl = 3, Db = 1, S = 1, G = 1 };
        s.Cs = cs;
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = ds;
        s.Gdt.Base = GdtAddress;
        s.Gdt.Limit = 5 * 8 - 1;
        s.Cr3 = Pml4Address;
        s.Cr4 = (1 << 5) | (1 << 9) | (1 << 10); // PAE, OSFXSR, OSXMMEXCPT
        s.Cr0 = 0x80000033;                      // PG, NE, ET, MP, PE
        s.Efer = 0x501;                          // LMA, LME, SCE
        vcpu.SetSregs(s);
        vcpu.SetMsr(VcpuState.MSR_STAR, (0x10UL << 48) | (0x08UL << 32));
        vcpu.SetMsr(VcpuState.MSR_LSTAR, SyscallStub);
        vcpu.SetMsr(VcpuState.MSR_SYSCALL_MASK, 0x200); // clear IF on entry
        vcpu.SetRegs(new KvmRegs { Rip = UserCode, Rflags = 0x2, Rsp = UserStackTop });
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Vm.Dispose();
    }
}
