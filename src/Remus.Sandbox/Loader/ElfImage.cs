using System.Buffers.Binary;

namespace Remus.Sandbox.Loader;

/// <summary>One PT_LOAD segment of the program.</summary>
internal readonly record struct ElfSegment(ulong Offset, ulong VirtualAddress, ulong FileSize, ulong MemorySize, uint Flags);

/// <summary>
/// A static x86-64 Linux program, parsed and checked before anything is built: ELF64, little-endian, x86-64,
/// ET_EXEC or static-pie ET_DYN, no PT_INTERP. Each refusal is one clear sentence for the user.
/// </summary>
internal sealed class ElfImage
{
    private const uint PT_LOAD = 1, PT_INTERP = 3, PT_PHDR = 6;

    public required byte[] File { get; init; }
    public required bool IsPie { get; init; }
    public required ulong Entry { get; init; }
    public required ulong PhdrOffset { get; init; }
    public required ushort PhdrCount { get; init; }
    public required ulong? PhdrVirtualAddress { get; init; }
    public required IReadOnlyList<ElfSegment> Segments { get; init; }

    /// <summary>Lowest and highest (exclusive, page-rounded) virtual addresses of the segments, before relocation.</summary>
    public ulong LowAddress => Segments.Min(s => s.VirtualAddress) & ~0xFFFUL;
    public ulong HighAddress => (Segments.Max(s => s.VirtualAddress + s.MemorySize) + 0xFFF) & ~0xFFFUL;

    public static ElfImage Load(string path)
    {
        byte[] file;
        try
        {
            if (Directory.Exists(path)) throw new SandboxException($"{path}: is a directory, not a program");
            file = System.IO.File.ReadAllBytes(path);
        }
        catch (FileNotFoundException) { throw new SandboxException($"{path}: program not found"); }
        catch (DirectoryNotFoundException) { throw new SandboxException($"{path}: program not found"); }
        catch (UnauthorizedAccessException) { throw new SandboxException($"{path}: permission denied"); }
        catch (IOException e) { throw new SandboxException($"{path}: cannot read the program: {e.Message}"); }
        return Parse(path, file);
    }

    public static ElfImage Parse(string path, byte[] file)
    {
        var s = file.AsSpan();
        if (s.Length < 16 || s[0] != 0x7F || s[1] != 'E' || s[2] != 'L' || s[3] != 'F')
            throw new SandboxException($"{path}: not an ELF program (only static Linux x86-64 ELF programs can run in a domain)");
        if (s[4] == 1)
            throw new SandboxException($"{path}: 32-bit programs are not supported; build it for x86-64");
        if (s[4] != 2 || s[5] != 1 || s.Length < 64)
            throw new SandboxException($"{path}: not a 64-bit little-endian ELF program");
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(s[16..]);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(s[18..]);
        if (machine != 0x3E)
            throw new SandboxException($"{path}: built for another architecture (ELF machine {machine}); only x86-64 is supported");
        if (type != 2 && type != 3)
            throw new SandboxException($"{path}: not an executable (ELF type {type})");
        ulong entry = BinaryPrimitives.ReadUInt64LittleEndian(s[24..]);
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(s[32..]);
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[54..]);
        ushort phnum = BinaryPrimitives.ReadUInt16LittleEndian(s[56..]);
        if (phentsize != 56 || phnum == 0 || phnum > 256 || phoff > (ulong)s.Length || (ulong)phnum * 56 > (ulong)s.Length - phoff)
            throw new SandboxException($"{path}: corrupt ELF program headers");

        var segments = new List<ElfSegment>();
        ulong? phdrVaddr = null;
        for (int i = 0; i < phnum; i++)
        {
            var ph = s.Slice((int)phoff + i * 56, 56);
            uint ptype = BinaryPrimitives.ReadUInt32LittleEndian(ph);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(ph[4..]);
            ulong off = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            ulong vaddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]);
            ulong filesz = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            ulong memsz = BinaryPrimitives.ReadUInt64LittleEndian(ph[40..]);
            switch (ptype)
            {
                case PT_INTERP:
                    throw new SandboxException($"{path}: dynamically linked programs are not supported; link with -static");
                case PT_PHDR:
                    phdrVaddr = vaddr;
                    break;
                case PT_LOAD:
                    if (filesz > memsz || off > (ulong)s.Length || filesz > (ulong)s.Length - off || memsz > 1UL << 40 || vaddr > 1UL << 46)
                        throw new SandboxException($"{path}: corrupt ELF segment {i}");
                    if (memsz > 0) segments.Add(new ElfSegment(off, vaddr, filesz, memsz, flags));
                    break;
            }
        }
        if (segments.Count == 0) throw new SandboxException($"{path}: the program has nothing to load");
        return new ElfImage
        {
            File = file, IsPie = type == 3, Entry = entry, PhdrOffset = phoff, PhdrCount = phnum,
            PhdrVirtualAddress = phdrVaddr, Segments = segments,
        };
    }
}
