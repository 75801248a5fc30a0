using System.Buffers.Binary;

namespace Remus.Sandbox.Platform.Kvm;

/// <summary>
/// The only ring-0 code of the guest: a few instructions each, because ring-0 guest code is slow (emulated) on nested
/// KVM. Each exits to the VMM with one port write; the VMM then resumes the program through the single iretq at
/// <see cref="ResumeAddress"/> with a frame it writes itself (<see cref="KvmPlatformVcpu"/>).
/// The syscall stub is ring3-probe.c's, byte for byte apart from the addresses. It returns with iretq, never sysretq:
/// on kvm_pvm the stub runs at CPL 3 (issue 7 fact 1), where sysretq faults (it triple-faulted there), while iretq
/// works at either privilege level, so one stub serves both kinds of KVM.
/// </summary>
internal static class Stubs
{
    /// <summary>The syscall stub at LSTAR (hosts without FSGSBASE). Entered by <c>syscall</c> (in ring 0 on stock KVM,
    /// still in ring 3 on kvm_pvm) with
    /// rcx = user rip, r11 = user rflags, rsp = user rsp, RFLAGS masked by SFMASK.</summary>
    public static byte[] Syscall() => Syscall(GuestLayout.Cpu0);

    /// <summary>vCPU <paramref name="cpu"/>'s syscall stub: the same code with its own data slot and stack.</summary>
    public static byte[] Syscall(CpuArea cpu)
    {
        var b = new List<byte>(40);
        SyscallPrologue(b, cpu);
        b.AddRange([0xe6, (byte)GuestLayout.SyscallPort]);          // 1d: out 0x20, al: exit to the VMM
        b.AddRange([0x48, 0xcf]);                                   // 1f: iretq: back to ring 3
        return b.ToArray();
    }

    /// <summary>The syscall stub when CR4.FSGSBASE is on: the same, plus FS/GS base into the data page, so the VMM
    /// learns a base the program changed with wrfsbase/wrgsbase without an ioctl.</summary>
    public static byte[] SyscallFsgs() => SyscallFsgs(GuestLayout.Cpu0);

    /// <summary>vCPU <paramref name="cpu"/>'s FSGSBASE syscall stub.</summary>
    public static byte[] SyscallFsgs(CpuArea cpu)
    {
        var b = new List<byte>(64);
        SyscallPrologue(b, cpu);
        b.Add(0x50);                                                // 1d: push rax (below the frame)
        b.AddRange([0xf3, 0x48, 0x0f, 0xae, 0xc0]);                 // 1e: rdfsbase rax
        b.AddRange([0x48, 0x89, 0x04, 0x25]); Imm32(b, cpu.FsBaseSave); // 23: mov [0x3008], rax
        b.AddRange([0xf3, 0x48, 0x0f, 0xae, 0xc8]);                 // 2b: rdgsbase rax
        b.AddRange([0x48, 0x89, 0x04, 0x25]); Imm32(b, cpu.GsBaseSave); // 30: mov [0x3010], rax
        b.Add(0x58);                                                // 38: pop rax
        b.AddRange([0xe6, (byte)GuestLayout.SyscallPort]);          // 39: out 0x20, al: exit to the VMM
        b.AddRange([0x48, 0xcf]);                                   // 3b: iretq
        return b.ToArray();
    }

    /// <summary>Save the user rsp in supervisor memory, switch to the kernel stack (never touching the user stack,
    /// whose 128-byte red zone is live) and build the iretq frame from rcx, r11 and the saved rsp. 29 bytes.</summary>
    private static void SyscallPrologue(List<byte> b, CpuArea cpu)
    {
        b.AddRange([0x48, 0x89, 0x24, 0x25]); Imm32(b, cpu.UserRspSave);         // 00: mov [0x3000], rsp
        b.AddRange([0x48, 0xc7, 0xc4]); Imm32(b, cpu.SyscallStackTop);           // 08: mov rsp, 0x7000
        b.AddRange([0x6a, (byte)GuestLayout.UserData]);                         // 0f: push 0x1b: user ss
        b.AddRange([0xff, 0x34, 0x25]); Imm32(b, cpu.UserRspSave);               // 11: push qword [0x3000]: user rsp
        b.AddRange([0x41, 0x53]);                                               // 18: push r11: user rflags
        b.AddRange([0x6a, (byte)GuestLayout.UserCode]);                         // 1a: push 0x23: user cs
        b.Add(0x51);                                                            // 1c: push rcx: user rip
    }

    /// <summary>Offset of the <c>out</c> in <see cref="Syscall"/>.</summary>
    public const int SyscallOutOffset = 0x1d;
    /// <summary>Offset of the <c>iretq</c> in <see cref="Syscall"/>.</summary>
    public const int SyscallIretqOffset = 0x1f;
    public const int SyscallLength = 0x21;
    public const int SyscallFsgsOutOffset = 0x39;
    public const int SyscallFsgsIretqOffset = 0x3b;
    public const int SyscallFsgsLength = 0x3d;

    /// <summary>
    /// The one place every return to ring 3 goes through, on every vCPU: the iretq of vCPU 0's plain syscall stub.
    /// The VMM sets rip here and rsp to the vCPU's own resume frame (<see cref="CpuArea.ResumeFrame"/>), after writing
    /// the frame from the user registers; the iretq touches nothing but rsp, so one serves all vCPUs.
    /// </summary>
    public const ulong ResumeAddress = GuestLayout.SyscallStub + SyscallIretqOffset;

    /// <summary>Exception stub for <paramref name="vector"/> (16 bytes), entered through an interrupt gate on IST1
    /// (IST2 for #DF) with the CPU's frame (and error code) on that stack and every general register untouched.
    /// <code>
    ///   e6 4n          out 0x40+n, al   exit to the VMM: the port says the vector, no register is clobbered
    ///   48 83 c4 08    add rsp, 8       (vectors with an error code only) drop it
    ///   48 cf          iretq            not reached in practice: the VMM resumes through ResumeAddress
    ///   f4 ...         hlt              padding: would surface as an unexpected HLT exit
    /// </code></summary>
    public static byte[] Exception(int vector)
    {
        if ((uint)vector >= GuestLayout.IdtVectors) throw new ArgumentOutOfRangeException(nameof(vector));
        var b = new List<byte>(GuestLayout.ExceptionStubSize)
        {
            0xe6, (byte)(GuestLayout.ExceptionPortBase + vector), // out 0x40+n, al
        };
        if (ExceptionMap.HasErrorCode(vector)) b.AddRange([0x48, 0x83, 0xc4, 0x08]); // add rsp, 8
        b.AddRange([0x48, 0xcf]);                                 // iretq
        while (b.Count < GuestLayout.ExceptionStubSize) b.Add(0xf4); // hlt
        return b.ToArray();
    }

    public static ulong ExceptionStubAddress(int vector) =>
        GuestLayout.ExceptionStubs + (ulong)(vector * GuestLayout.ExceptionStubSize);

    /// <summary>Writes all stubs into the reserved area (the code page is filled with hlt first).</summary>
    public static void Write(Span<byte> reserved)
    {
        reserved.Slice((int)GuestLayout.SyscallStub, 4096).Fill(0xf4);
        reserved.Slice((int)GuestLayout.SiblingStubs, (int)(GuestLayout.SiblingUser - GuestLayout.SiblingStubs)).Fill(0xf4);
        for (int i = 0; i < GuestLayout.MaxVcpus; i++)
        {
            CpuArea cpu = GuestLayout.Cpu(i);
            Syscall(cpu).CopyTo(reserved[(int)cpu.SyscallStub..]);
            SyscallFsgs(cpu).CopyTo(reserved[(int)cpu.SyscallStubFsgs..]);
        }
        for (int v = 0; v < GuestLayout.IdtVectors; v++) Exception(v).CopyTo(reserved[(int)ExceptionStubAddress(v)..]);
    }

    private static void Imm32(List<byte> b, ulong value)
    {
        if (value > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(value), "not a sign-extendable 32-bit address");
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, (uint)value);
        b.AddRange(v);
    }
}
