using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Loader;

/// <summary>Where the program starts: its entry point and initial stack pointer.</summary>
internal readonly record struct LoadedProgram(ulong Entry, ulong StackPointer);

/// <summary>Copies a static program's segments into its address space and sets up brk, as Linux's binfmt_elf does
/// (in the paged model the pages the segments' file bytes cover are backed; the rest of .bss on first touch).</summary>
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
        foreach (var seg in elf.Segments)
        {
            ulong at = seg.VirtualAddress + bias;
            mm.KernelWrite(at, elf.File.AsSpan((int)seg.Offset, (int)seg.FileSize));
        }
        mm.ImageStart = low;
        mm.BrkStart = high;
        mm.Brk = high;

        ulong phdr = elf.PhdrVirtualAddress is { } pv
            ? pv + bias
            : FindPhdrInImage(elf) + bias;
        ulong sp = InitialStack.Build(mm, spec, new AuxInfo(phdr, elf.PhdrCount, elf.Entry + bias), random);
        return new LoadedProgram(elf.Entry + bias, sp);
    }

    /// <summary>Without PT_PHDR the headers are found where the first segment maps the file's phoff.</summary>
    private static ulong FindPhdrInImage(ElfImage elf)
    {
        foreach (var s in elf.Segments)
            if (elf.PhdrOffset >= s.Offset && elf.PhdrOffset < s.Offset + s.FileSize)
                return s.VirtualAddress + (elf.PhdrOffset - s.Offset);
        return 0;
    }
}
