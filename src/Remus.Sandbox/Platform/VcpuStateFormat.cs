using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Remus.Sandbox.Platform;

/// <summary>
/// The body of a checkpoint's VCPU_STATE record (docs/stream-format.md §4.3.1): the same on every platform, so a domain
/// saved on ptrace restores on KVM and the reverse.
/// <code>
///   0  u32 magic "CPU2" (0x32555043)
///   4  u32 bytes of the register block: 216
///   8  216 bytes: the general registers as Linux's struct user_regs_struct (27 × u64: r15 … gs), FS/GS base included
/// 224  the FPU/SSE/AVX state: <see cref="FpuState"/> (XCR0, the component layout, the standard-format XSAVE area)
/// </code>
/// The segment selectors in the register block are the source platform's and are not applied (each platform has its
/// own GDT). A version-1 body ("CPU1", written before checkpoints were neutral: the registers, then ptrace's raw
/// NT_X86_XSTATE area or KVM's serialized <see cref="Remus.Kvm.VcpuState"/>) is read too and converted.
/// </summary>
public static class VcpuStateFormat
{
    public const uint Magic = 0x32555043;       // "CPU2"
    public const uint LegacyMagic = 0x31555043; // "CPU1"
    public static int RegsSize => Marshal.SizeOf<UserRegs>();

    public static byte[] Write(in UserRegs regs, ReadOnlySpan<byte> fpuState)
    {
        int size = RegsSize;
        var blob = new byte[8 + size + fpuState.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(blob, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(4), (uint)size);
        MemoryMarshal.Write(blob.AsSpan(8), in regs);
        fpuState.CopyTo(blob.AsSpan(8 + size));
        return blob;
    }

    /// <summary>Bytes of the body <see cref="Write(in UserRegs, ReadOnlySpan{byte})"/> makes of an FPU state of <paramref name="fpuLength"/> bytes.</summary>
    public static int Length(int fpuLength) => 8 + RegsSize + fpuLength;

    /// <summary>The body <see cref="Write(in UserRegs, ReadOnlySpan{byte})"/> makes, into <paramref name="into"/> (exactly <see cref="Length"/> bytes).</summary>
    public static void Write(in UserRegs regs, ReadOnlySpan<byte> fpuState, Span<byte> into)
    {
        int size = RegsSize;
        if (into.Length != Length(fpuState.Length)) throw new ArgumentException($"a vCPU state body here is {Length(fpuState.Length)} bytes", nameof(into));
        BinaryPrimitives.WriteUInt32LittleEndian(into, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(into[4..], (uint)size);
        MemoryMarshal.Write(into[8..], in regs);
        fpuState.CopyTo(into[(8 + size)..]);
    }

    /// <summary>The registers and the neutral FPU state (serialized <see cref="FpuState"/>) of a VCPU_STATE body.</summary>
    /// <exception cref="InvalidDataException">Not a vCPU state, or a corrupt one.</exception>
    public static (UserRegs Regs, byte[] FpuState) Read(ReadOnlySpan<byte> blob)
    {
        int size = RegsSize;
        if (blob.Length < 8 + size || BinaryPrimitives.ReadUInt32LittleEndian(blob[4..]) != size)
            throw new InvalidDataException("not a vCPU state");
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        var regs = MemoryMarshal.Read<UserRegs>(blob[8..]);
        var rest = blob[(8 + size)..];
        if (magic == Magic)
        {
            FpuState.Parse(rest); // validates
            return (regs, rest.ToArray());
        }
        if (magic == LegacyMagic) return (regs, FromLegacy(rest).Serialize());
        throw new InvalidDataException($"not a vCPU state (magic 0x{magic:x8})");
    }

    /// <summary>
    /// The extended state of a version-1 body: KVM's <see cref="Remus.Kvm.VcpuState"/> (its XSAVE area, under its XCR0;
    /// the host's where the vCPU had no XSAVE of its own, as on kvm_pvm) or ptrace's NT_X86_XSTATE area (the user XCR0
    /// in its first software-reserved word). Both are in this host's layout: a version-1 checkpoint was restorable only
    /// on the platform, and in practice the kind of CPU, it was taken on.
    /// </summary>
    private static FpuState FromLegacy(ReadOnlySpan<byte> ext)
    {
        try
        {
            if (ext.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(ext) == Remus.Kvm.VcpuState.Magic)
            {
                var s = Remus.Kvm.VcpuState.Deserialize(ext);
                const ulong cr4Osxsave = 1UL << 18;
                ulong xcr0 = XsaveLayout.HostXcr0;
                if ((s.Sregs.Cr4 & cr4Osxsave) != 0)
                    for (int i = 0; i < s.Xcrs.NrXcrs && i < 16; i++)
                        if (s.Xcrs.Xcrs[i].Xcr == 0) xcr0 = s.Xcrs.Xcrs[i].Value;
                return FpuState.FromHostArea(s.Xsave, xcr0);
            }
            if (ext.Length < XsaveLayout.HeaderEnd) throw new InvalidDataException($"its XSAVE area has {ext.Length} bytes");
            ulong sw = BinaryPrimitives.ReadUInt64LittleEndian(ext[XsaveLayout.SoftwareReserved..]);
            return FpuState.FromHostArea(ext, sw != 0 ? sw : XsaveLayout.HostXcr0);
        }
        catch (SandboxException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }
}
