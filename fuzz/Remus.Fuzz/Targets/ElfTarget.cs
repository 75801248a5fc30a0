using Remus.Sandbox;
using Remus.Sandbox.Loader;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The ELF loader: <see cref="ElfImage.Parse"/>, then <see cref="ProgramLoader.Load"/> into an 8 MiB domain memory,
/// both in the paged model (KVM) and the flat one (ptrace), as <c>SandboxDomain.Create</c> does.
/// </summary>
public static class ElfTarget
{
    private const ulong MemoryBytes = 8 << 20;

    public static FuzzTarget Target { get; } = new("elf",
        "ElfImage.Parse + ProgramLoader.Load into 8 MiB, paged and flat",
        Feed, [typeof(SandboxException)]);

    private static void Feed(byte[] input)
    {
        var elf = ElfImage.Parse("fuzz.elf", input);
        var spec = new DomainSpec { ProgramPath = "fuzz.elf", Args = ["a"], MemoryMiB = (int)(MemoryBytes >> 20) };
        SandboxException? refused = null;
        foreach (bool paged in new[] { true, false })
        {
            using var memory = new GuestMemory(MemoryBytes);
            try
            {
                ProgramLoader.Load(elf, new AddressSpace(memory, paged), spec, new byte[16]);
            }
            catch (SandboxException e)
            {
                refused ??= e;
            }
        }
        if (refused != null) throw refused;
    }
}
