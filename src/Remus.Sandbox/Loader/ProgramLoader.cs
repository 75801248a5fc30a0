using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Loader;

/// <summary>Where the program starts: its entry point and initial stack pointer.</summary>
internal readonly record struct LoadedProgram(ulong Entry, ulong StackPointer);

/// <summary>Maps a static program's segments into its address space, each with its own protection (PF_R/W/X: text
/// r-x, read-only data r--, data rw-; the .bss past the last file page an anonymous rw- piece), copies their bytes
/// and sets up brk, as Linux's binfmt_elf does (in the paged model the pages the segments' file bytes cover are
/// backed; the rest of .bss on first touch). Gaps between segments stay unmapped.</summary>
internal static class ProgramLoader
{
    public static LoadedProgram Load(ElfImage elf, AddressSpace mm, DomainSpec spec, ReadOnlySpan<byte> random)
    {
        ulong bias = elf.IsPie ? AddressSpace.PieBase - elf.LowAddress : 0;
        ulong low = elf.LowAddress + bias, high = elf.HighAddress + bias;
        var mem = mm.Memory;
        ulong needed = high - Math.Min(low, GuestMemory.UserBase) + mm.StackSize + (1 << 20);
        if (low < GuestMemory.UserBase)
            throw new SandboxException($"{spec.ProgramPath}: the program is linked at 0x{low:x}, below the lowest address a domain offers (0x{GuestMemory.UserBase:x})");
        if (mm.Paged ? (high - low) + (1 << 20) > mm.Frames!.Total * AddressSpace.PageSize : high + (1 << 20) > mm.StackBottom)
        {
            ulong needMiB = (high + (1 << 20) + mm.StackSize + (1 << 20) - 1) >> 20;
            throw new SandboxException(
                $"{spec.ProgramPath}: the program needs at least {Math.Max(needMiB, needed >> 20)} MiB of memory but the domain has {mem.Size >> 20} MiB (raise --memory / memory)");
        }
        mm.ImageStart = low;
        mm.BrkStart = high;
        mm.Brk = high;
        // All pieces first (a later segment takes over a page it shares with an earlier one), then the bytes.
        foreach (var seg in elf.Segments)
        {
            ulong at = seg.VirtualAddress + bias;
            ulong start = at & ~(AddressSpace.PageSize - 1);
            ulong fileEnd = AddressSpace.PageUp(at + seg.FileSize), end = AddressSpace.PageUp(at + seg.MemorySize);
            int prot = Protection(seg.Flags);
            mm.MapImage(start, seg.FileSize > 0 ? fileEnd : start, prot, file: true);
            mm.MapImage(seg.FileSize > 0 ? fileEnd : start, end, prot, file: false);
        }
        foreach (var seg in elf.Segments)
            mm.KernelWrite(seg.VirtualAddress + bias, elf.File.AsSpan((int)seg.Offset, (int)seg.FileSize));

        ulong phdr = elf.PhdrVirtualAddress is { } pv
            ? pv + bias
            : FindPhdrInImage(elf) + bias;
        ulong sp = InitialStack.Build(mm, spec, new AuxInfo(phdr, elf.PhdrCount, elf.Entry + bias), random);
        return new LoadedProgram(elf.Entry + bias, sp);
    }

    private const uint PF_X = 1, PF_W = 2, PF_R = 4;

    /// <summary>A segment's PROT_* from its p_flags.</summary>
    private static int Protection(uint flags) =>
        ((flags & PF_R) != 0 ? AddressSpace.ProtRead : 0) | ((flags & PF_W) != 0 ? AddressSpace.ProtWrite : 0)
        | ((flags & PF_X) != 0 ? AddressSpace.ProtExec : 0);

    /// <summary>Without PT_PHDR the headers are found where the first segment maps the file's phoff.</summary>
    private static ulong FindPhdrInImage(ElfImage elf)
    {
        foreach (var s in elf.Segments)
            if (elf.PhdrOffset >= s.Offset && elf.PhdrOffset < s.Offset + s.FileSize)
                return s.VirtualAddress + (elf.PhdrOffset - s.Offset);
        return 0;
    }
}
