using System.Buffers.Binary;

namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// The host process that lends its address space and CPU to the guest on the ptrace platform: a 200-byte static
/// ELF that only loops on pause(2). It is linked at 0x10000, below guest user memory (which starts at 2 MiB), so
/// the guest RAM mapping never collides with it. Its one <c>syscall</c> instruction is also where the VMM runs
/// system calls of its own inside the stub (mmap of guest RAM, signal mask).
/// </summary>
internal static class StubProgram
{
    public const ulong LoadAddress = 0x10000;
    private const int CodeOffset = 64 + 56; // ELF header + one program header

    /// <summary>Address of the stub's <c>syscall</c> instruction.</summary>
    public const ulong SyscallInstruction = LoadAddress + CodeOffset + 5;

    /// <summary>64 zero bytes inside the stub (an empty signal set, a default sigaction).</summary>
    public const ulong Zeros = LoadAddress + CodeOffset + 16;

    public static byte[] Build()
    {
        // loop: mov eax, 34 (pause); syscall; jmp loop
        byte[] code = [0xB8, 0x22, 0x00, 0x00, 0x00, 0x0F, 0x05, 0xEB, 0xF7];
        var elf = new byte[CodeOffset + 16 + 64];
        var s = elf.AsSpan();
        s[0] = 0x7F; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; s[5] = 1; s[6] = 1; // 64-bit, little-endian, version 1
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);      // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 0x3E);   // x86-64
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], LoadAddress + CodeOffset); // entry
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], 64);     // phoff
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], 64);     // ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], 56);     // phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 1);      // phnum
        var ph = s[64..];
        BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);           // PT_LOAD
        BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 5);      // R+X
        BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], 0x1000);
        code.CopyTo(s[CodeOffset..]);
        return elf;
    }
}
