using System.Diagnostics;
using Remus.Sandbox.Platform.Kvm;
using Xunit;

namespace Remus.Tests.Sandbox.Kvm;

/// <summary>A [Fact] skipped when objdump (binutils) is not on PATH.</summary>
public sealed class ObjdumpFactAttribute : FactAttribute
{
    public ObjdumpFactAttribute()
    {
        if (StubTests.Objdump is null) Skip = "needs objdump on PATH to disassemble the stubs (install binutils)";
    }
}

/// <summary>The ring-0 stubs, byte for byte against the hand disassembly, and (with objdump) against a real
/// disassembler.</summary>
public sealed class StubTests
{
    internal static string? Objdump { get; } = FindOnPath("objdump");

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [Fact]
    public void Syscall_stub_is_ring3_probe_with_our_addresses()
    {
        byte[] expected =
        [
            0x48, 0x89, 0x24, 0x25, 0x00, 0x30, 0x00, 0x00, // 00: mov [0x3000], rsp      save the user rsp
            0x48, 0xc7, 0xc4, 0x00, 0x70, 0x00, 0x00,       // 08: mov rsp, 0x7000        kernel stack
            0x6a, 0x1b,                                     // 0f: push 0x1b              user ss
            0xff, 0x34, 0x25, 0x00, 0x30, 0x00, 0x00,       // 11: push qword [0x3000]    user rsp
            0x41, 0x53,                                     // 18: push r11               user rflags
            0x6a, 0x23,                                     // 1a: push 0x23              user cs
            0x51,                                           // 1c: push rcx               user rip
            0xe6, 0x20,                                     // 1d: out 0x20, al           exit to the VMM
            0x48, 0xcf,                                     // 1f: iretq
        ];
        Assert.Equal(expected, Stubs.Syscall());
        Assert.Equal(Stubs.SyscallLength, expected.Length);
        Assert.Equal(new byte[] { 0xe6, 0x20 }, expected[Stubs.SyscallOutOffset..(Stubs.SyscallOutOffset + 2)]);
        Assert.Equal(new byte[] { 0x48, 0xcf }, expected[Stubs.SyscallIretqOffset..]);
        Assert.Equal(GuestLayout.SyscallStub + 0x1f, Stubs.ResumeAddress);
        // The VMM resumes through its own frame in a page the program can read but not write, not the one the pushes
        // build on the (user-writable) syscall stack.
        Assert.NotEqual(GuestLayout.SyscallStackTop - 5 * 8, GuestLayout.ResumeFrame);
    }

    [Fact]
    public void Each_vCPU_has_its_own_stub_which_differs_only_in_its_data_slot_and_stack()
    {
        var seen = new HashSet<ulong>();
        for (int i = 0; i < GuestLayout.MaxVcpus; i++)
        {
            CpuArea cpu = GuestLayout.Cpu(i);
            byte[] plain = Stubs.Syscall(cpu), fsgs = Stubs.SyscallFsgs(cpu);
            Assert.Equal(Stubs.SyscallLength, plain.Length);
            Assert.Equal(Stubs.SyscallFsgsLength, fsgs.Length);
            Assert.Equal((uint)cpu.UserRspSave, BitConverter.ToUInt32(plain, 4));      // mov [rsp save], rsp
            Assert.Equal((uint)cpu.SyscallStackTop, BitConverter.ToUInt32(plain, 11)); // mov rsp, stack top
            Assert.Equal((uint)cpu.UserRspSave, BitConverter.ToUInt32(plain, 20));     // push qword [rsp save]
            Assert.Equal((uint)cpu.FsBaseSave, BitConverter.ToUInt32(fsgs, 0x27));
            Assert.Equal((uint)cpu.GsBaseSave, BitConverter.ToUInt32(fsgs, 0x34));
            byte[] withVcpu0 = (byte[])plain.Clone();
            Array.Copy(Stubs.Syscall(), 4, withVcpu0, 4, 4);
            Array.Copy(Stubs.Syscall(), 11, withVcpu0, 11, 4);
            Array.Copy(Stubs.Syscall(), 20, withVcpu0, 20, 4);
            Assert.Equal(Stubs.Syscall(), withVcpu0);
            Assert.True(seen.Add(cpu.UserRspSave), $"vCPU {i} shares its rsp slot");
            Assert.True(seen.Add(cpu.SyscallStackTop - 8), $"vCPU {i} shares its syscall stack");
            Assert.True(seen.Add(cpu.ResumeFrame), $"vCPU {i} shares its resume frame");
        }
    }

    [Fact]
    public void FSGSBASE_syscall_stub_adds_only_the_base_saves()
    {
        byte[] expected =
        [
            0x48, 0x89, 0x24, 0x25, 0x00, 0x30, 0x00, 0x00, // 00: mov [0x3000], rsp
            0x48, 0xc7, 0xc4, 0x00, 0x70, 0x00, 0x00,       // 08: mov rsp, 0x7000
            0x6a, 0x1b,                                     // 0f: push 0x1b
            0xff, 0x34, 0x25, 0x00, 0x30, 0x00, 0x00,       // 11: push qword [0x3000]
            0x41, 0x53,                                     // 18: push r11
            0x6a, 0x23,                                     // 1a: push 0x23
            0x51,                                           // 1c: push rcx
            0x50,                                           // 1d: push rax
            0xf3, 0x48, 0x0f, 0xae, 0xc0,                   // 1e: rdfsbase rax
            0x48, 0x89, 0x04, 0x25, 0x08, 0x30, 0x00, 0x00, // 23: mov [0x3008], rax
            0xf3, 0x48, 0x0f, 0xae, 0xc8,                   // 2b: rdgsbase rax
            0x48, 0x89, 0x04, 0x25, 0x10, 0x30, 0x00, 0x00, // 30: mov [0x3010], rax
            0x58,                                           // 38: pop rax
            0xe6, 0x20,                                     // 39: out 0x20, al
            0x48, 0xcf,                                     // 3b: iretq
        ];
        Assert.Equal(expected, Stubs.SyscallFsgs());
        Assert.Equal(Stubs.SyscallFsgsLength, expected.Length);
        Assert.Equal(new byte[] { 0xe6, 0x20 }, expected[Stubs.SyscallFsgsOutOffset..(Stubs.SyscallFsgsOutOffset + 2)]);
        Assert.Equal(new byte[] { 0x48, 0xcf }, expected[Stubs.SyscallFsgsIretqOffset..]);
        Assert.Equal(Stubs.Syscall()[..Stubs.SyscallOutOffset], expected[..Stubs.SyscallOutOffset]);
        Assert.Equal(GuestLayout.DataPage + 8, GuestLayout.FsBaseSave);
        Assert.Equal(GuestLayout.DataPage + 16, GuestLayout.GsBaseSave);
    }

    [Fact]
    public void Exception_stubs_exit_with_the_vector_as_port_and_drop_the_error_code()
    {
        for (int v = 0; v < 32; v++)
        {
            byte[] stub = Stubs.Exception(v);
            Assert.Equal(16, stub.Length);
            Assert.Equal(0xe6, stub[0]);                                   // out imm8, al
            Assert.Equal(0x40 + v, stub[1]);
            bool error = v is 8 or 10 or 11 or 12 or 13 or 14 or 17 or 21 or 29 or 30;
            Assert.Equal(error, ExceptionMap.HasErrorCode(v));
            byte[] rest = error ? [0x48, 0x83, 0xc4, 0x08, 0x48, 0xcf] : [0x48, 0xcf]; // (add rsp, 8;) iretq
            Assert.Equal(rest, stub[2..(2 + rest.Length)]);
            Assert.All(stub[(2 + rest.Length)..], b => Assert.Equal(0xf4, b)); // hlt padding
            Assert.NotEqual(0x7e, stub[1]);                                // KVM special-cases port 0x7e
        }
        Assert.Equal(GuestLayout.ExceptionStubs + 13 * 16, Stubs.ExceptionStubAddress(13));
        Assert.Throws<ArgumentOutOfRangeException>(() => Stubs.Exception(32));
    }

    [Fact]
    public void Stubs_are_written_where_LSTAR_and_the_IDT_point()
    {
        var image = new byte[GuestLayout.ReservedSize];
        GuestLayout.Build(image, 16UL << 20);
        Assert.Equal(Stubs.Syscall(), image[(int)GuestLayout.SyscallStub..((int)GuestLayout.SyscallStub + Stubs.SyscallLength)]);
        Assert.Equal(Stubs.SyscallFsgs(), image[(int)GuestLayout.SyscallStubFsgs..((int)GuestLayout.SyscallStubFsgs + Stubs.SyscallFsgsLength)]);
        Assert.Equal(0x48, image[Stubs.ResumeAddress]);
        Assert.Equal(0xcf, image[Stubs.ResumeAddress + 1]);
        for (int v = 0; v < 32; v++)
            Assert.Equal(Stubs.Exception(v), image[(int)Stubs.ExceptionStubAddress(v)..((int)Stubs.ExceptionStubAddress(v) + 16)]);
        Assert.Equal(GuestLayout.SyscallStub, CpuConfig.LstarFor(fsgsbase: false));
        Assert.Equal(GuestLayout.SyscallStubFsgs, CpuConfig.LstarFor(fsgsbase: true));
        for (int i = 1; i < GuestLayout.MaxVcpus; i++)
        {
            CpuArea cpu = GuestLayout.Cpu(i);
            Assert.Equal(Stubs.Syscall(cpu), image[(int)cpu.SyscallStub..((int)cpu.SyscallStub + Stubs.SyscallLength)]);
            Assert.Equal(Stubs.SyscallFsgs(cpu), image[(int)cpu.SyscallStubFsgs..((int)cpu.SyscallStubFsgs + Stubs.SyscallFsgsLength)]);
            Assert.Equal(cpu.SyscallStub, CpuConfig.LstarFor(false, cpu));
            Assert.Equal(cpu.SyscallStubFsgs, CpuConfig.LstarFor(true, cpu));
        }
    }

    [ObjdumpFact]
    public void Objdump_disassembles_the_stubs_as_documented()
    {
        Assert.Equal(
        [
            "mov %rsp,0x3000", "mov $0x7000,%rsp", "push $0x1b", "push 0x3000", "push %r11", "push $0x23", "push %rcx",
            "out %al,$0x20", "iretq",
        ], Disassemble(Stubs.Syscall()));
        Assert.Equal(
        [
            "mov %rsp,0x3000", "mov $0x7000,%rsp", "push $0x1b", "push 0x3000", "push %r11", "push $0x23", "push %rcx",
            "push %rax", "rdfsbase %rax", "mov %rax,0x3008", "rdgsbase %rax", "mov %rax,0x3010", "pop %rax",
            "out %al,$0x20", "iretq",
        ], Disassemble(Stubs.SyscallFsgs()));
        Assert.Equal(["out %al,$0x4e", "add $0x8,%rsp", "iretq"], Disassemble(Stubs.Exception(14)).Take(3));
        Assert.Equal(["out %al,$0x46", "iretq", "hlt"], Disassemble(Stubs.Exception(6)).Take(3));
    }

    /// <summary>objdump's AT&amp;T text of each instruction, whitespace-normalized, without the address and bytes.</summary>
    private static List<string> Disassemble(byte[] code)
    {
        string file = Path.Combine(Path.GetTempPath(), $"remus-stub-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(file, code);
        try
        {
            var psi = new ProcessStartInfo(Objdump!, ["-D", "-b", "binary", "-m", "i386:x86-64", "--no-show-raw-insn", file])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            var result = new List<string>();
            foreach (string line in output.Split('\n'))
            {
                // "  1d:\tout    %al,$0x20"
                int colon = line.IndexOf(":\t", StringComparison.Ordinal);
                if (colon < 0 || !line[..colon].Trim().All(Uri.IsHexDigit)) continue;
                string text = line[(colon + 2)..].Trim();
                int comment = text.IndexOf('#');
                if (comment >= 0) text = text[..comment].Trim();
                result.Add(string.Join(' ', text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)));
            }
            return result;
        }
        finally
        {
            File.Delete(file);
        }
    }
}
