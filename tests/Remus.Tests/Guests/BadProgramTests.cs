using System.Buffers.Binary;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Guests;

/// <summary>
/// `remus run` refuses what it cannot run with one clear line on stderr, a non-zero exit, no stack trace, nothing on
/// stdout and nothing left in its run directory.
/// </summary>
public sealed class BadProgramTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), $"remus-bad-programs-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public BadProgramTests() => Directory.CreateDirectory(dir);

    public void Dispose()
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void AssertMentions(string line, params string[] anyOf) =>
        Assert.True(anyOf.Any(w => line.Contains(w, StringComparison.OrdinalIgnoreCase)),
            $"error line \"{line}\" mentions none of: {string.Join(" | ", anyOf)}");

    private string WriteExecutable(string name, byte[] content)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllBytes(p, content);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return p;
    }

    [Fact]
    public void Missing_program()
    {
        var line = GuestAssert.OneLineError(RemusCli.Run(["run", Path.Combine(dir, "no-such-program")]));
        AssertMentions(line, "not found", "no such", "does not exist");
    }

    [Fact]
    public void Text_file()
    {
        var p = WriteExecutable("script.sh", "#!/bin/sh\necho hello\n"u8.ToArray());
        AssertMentions(GuestAssert.OneLineError(RemusCli.Run(["run", p])), "ELF");
    }

    [Fact]
    public void Empty_file()
    {
        var p = WriteExecutable("empty", []);
        AssertMentions(GuestAssert.OneLineError(RemusCli.Run(["run", p])), "ELF");
    }

    [Fact]
    public void Truncated_elf_header()
    {
        var p = WriteExecutable("truncated", [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1]);
        GuestAssert.OneLineError(RemusCli.Run(["run", p]));
    }

    [Fact]
    public void Directory_as_program()
    {
        GuestAssert.OneLineError(RemusCli.Run(["run", dir]));
    }

    [Fact]
    public void Elf_32_bit()
    {
        // A real one when this gcc can build 32-bit programs; otherwise a hand-made i386 ELF executable.
        var built = GuestBuilder.Compile(GuestBuilder.SourcePath("exitcode"), "gcc", ["-m32", "-static", "-O2"], "m32", out _);
        var p = built ?? WriteExecutable("elf32", Elf32Executable());
        AssertMentions(GuestAssert.OneLineError(RemusCli.Run(["run", p, "exit", "0"])), "32-bit", "32 bit", "ELFCLASS32");
    }

    [Fact]
    public void Elf_64_bit_for_another_machine()
    {
        var p = WriteExecutable("aarch64", Elf64ForMachine(183)); // EM_AARCH64
        GuestAssert.OneLineError(RemusCli.Run(["run", p]));
    }

    [Theory]
    [InlineData(GuestFlavor.GlibcDynamic)]
    [InlineData(GuestFlavor.GlibcDynamicNoPie)]
    public void Dynamically_linked_program(GuestFlavor flavor)
    {
        var p = GuestBuilder.Build("streams", flavor);
        Assert.Equal(0, NativeRun.Run(new GuestInvocation(p)).ExitCode); // it is a fine program, just not static
        AssertMentions(GuestAssert.OneLineError(RemusCli.Run(["run", p])), "dynamically linked");
    }

    [Theory]
    [InlineData(4)]
    [InlineData(16)]
    public void Program_larger_than_the_domain_memory(int memoryMiB)
    {
        // bigimage: 8 MiB of .data and 32 MiB of .bss.
        var p = GuestBuilder.Build("bigimage");
        AssertMentions(GuestAssert.OneLineError(RemusCli.Run(["run", "--memory", memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), p])), "memory");
    }

    /// <summary>A minimal i386 ET_EXEC: one PT_LOAD, code = exit(0) via int 0x80.</summary>
    public static byte[] Elf32Executable()
    {
        byte[] code = [0xb8, 0x01, 0x00, 0x00, 0x00, 0xbb, 0x00, 0x00, 0x00, 0x00, 0xcd, 0x80];
        const int ehsize = 52, phsize = 32;
        const uint baseAddr = 0x08048000;
        var f = new byte[ehsize + phsize + code.Length];
        var s = f.AsSpan();
        s[0] = 0x7f; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 1; // ELFCLASS32
        s[5] = 1; // little endian
        s[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);                               // e_type ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 3);                               // e_machine EM_386
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);                               // e_version
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], baseAddr + ehsize + phsize);      // e_entry
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], ehsize);                          // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(s[40..], ehsize);                          // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[42..], phsize);                          // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[44..], 1);                               // e_phnum
        BinaryPrimitives.WriteUInt16LittleEndian(s[46..], 40);                              // e_shentsize
        var ph = s[ehsize..];
        BinaryPrimitives.WriteUInt32LittleEndian(ph[0..], 1);                               // PT_LOAD
        BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 0);                               // p_offset
        BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], baseAddr);                        // p_vaddr
        BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], baseAddr);                       // p_paddr
        BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)f.Length);                 // p_filesz
        BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)f.Length);                 // p_memsz
        BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 5);                              // PF_R|PF_X
        BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], 0x1000);                         // p_align
        code.CopyTo(s[(ehsize + phsize)..]);
        return f;
    }

    /// <summary>A minimal 64-bit little-endian ET_EXEC for the given e_machine, with one PT_LOAD.</summary>
    public static byte[] Elf64ForMachine(ushort machine)
    {
        const int ehsize = 64, phsize = 56;
        const ulong baseAddr = 0x400000;
        var f = new byte[ehsize + phsize + 16];
        var s = f.AsSpan();
        s[0] = 0x7f; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; s[5] = 1; s[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], baseAddr + ehsize + phsize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], ehsize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], ehsize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], phsize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(s[58..], 64);
        var ph = s[ehsize..];
        BinaryPrimitives.WriteUInt32LittleEndian(ph[0..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], baseAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], baseAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)f.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], (ulong)f.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], 0x1000);
        return f;
    }
}
