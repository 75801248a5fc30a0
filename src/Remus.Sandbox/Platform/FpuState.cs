using System.Buffers.Binary;

namespace Remus.Sandbox.Platform;

/// <summary>
/// A vCPU's x87/SSE/AVX/AVX-512 state in the platform-neutral form a checkpoint carries: the XSAVE area in the
/// standard (non-compacted) format, the XCR0 it was taken under, and where each component ≥ 2 sits in that area (the
/// offsets are the saving CPU's, see <see cref="XsaveLayout"/>). ptrace and KVM both read and write this format
/// natively; each platform turns it into its own with <see cref="ToArea"/>, which moves every component to the
/// receiver's offset and refuses, in one line, a component the source had in use that the receiver lacks.
/// <para>Serialized (<see cref="Serialize"/>, little-endian): <c>u64 xcr0, u32 area length A, u32 count n,
/// n × [u32 component, u32 offset, u32 size, u32 reserved 0], A bytes of XSAVE area</c>. docs/stream-format.md §4.3.1.</para>
/// </summary>
public sealed class FpuState
{
    /// <summary>One component's place in <see cref="Area"/>.</summary>
    public readonly record struct Slot(int Component, int Offset, int Size);

    public const int MaxAreaSize = 1 << 20;
    private const int SlotBytes = 16;

    /// <summary>The state components enabled when the state was taken (bits 0 and 1 always set).</summary>
    public ulong Xcr0 { get; }

    /// <summary>The XSAVE area, standard format. Bytes 464..511 (software-reserved) are zero.</summary>
    public byte[] Area { get; }

    /// <summary>Offset and size of every component ≥ 2 enabled in <see cref="Xcr0"/>, by component.</summary>
    public IReadOnlyList<Slot> Layout { get; }

    /// <summary>The header's XSTATE_BV: the components not in their initial state (as the CPU tracks it).</summary>
    public ulong XstateBv => BinaryPrimitives.ReadUInt64LittleEndian(Area.AsSpan(XsaveLayout.XstateBvOffset));

    private FpuState(ulong xcr0, byte[] area, Slot[] layout)
    {
        Xcr0 = xcr0;
        Area = area;
        Layout = layout;
    }

    /// <summary>
    /// The neutral form of a standard-format XSAVE <paramref name="area"/> taken under <paramref name="xcr0"/>, laid out
    /// as this host lays it out (<see cref="XsaveLayout.HostLayout"/>). A component the area reports in use is
    /// taken as enabled even if <paramref name="xcr0"/> omits it; an enabled one that does not fit the area is left out.
    /// </summary>
    public static FpuState FromHostArea(ReadOnlySpan<byte> area, ulong xcr0)
    {
        if (area.Length < XsaveLayout.HeaderEnd || area.Length > MaxAreaSize)
            throw new SandboxException($"the XSAVE area has {area.Length} bytes");
        if (BinaryPrimitives.ReadUInt64LittleEndian(area[XsaveLayout.XcompBvOffset..]) != 0)
            throw new SandboxException("the XSAVE area is in the compacted format");
        byte[] copy = area.ToArray();
        copy.AsSpan(XsaveLayout.SoftwareReserved, XsaveLayout.SoftwareReservedEnd - XsaveLayout.SoftwareReserved).Clear();
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(copy.AsSpan(XsaveLayout.XstateBvOffset));
        xcr0 = (xcr0 | bv | 3) & XsaveLayout.UserMask;
        var slots = new List<Slot>();
        for (int i = 2; i < 63; i++)
        {
            if ((xcr0 & (1UL << i)) == 0) continue;
            var (offset, size) = XsaveLayout.HostLayout(i);
            if (size == 0 || offset + size > copy.Length)
            {
                if ((bv & (1UL << i)) != 0)
                    throw new SandboxException($"the XSAVE area holds {XsaveLayout.Name(i)} state where this CPU has none");
                xcr0 &= ~(1UL << i);
                continue;
            }
            slots.Add(new Slot(i, offset, size));
        }
        return new FpuState(xcr0, copy, slots.ToArray());
    }

    /// <summary>The components whose state is in use: set in XSTATE_BV and, for components ≥ 2 (whose initial state
    /// is all zeros), holding a non-zero byte. x87 and SSE, which every x86-64 vCPU has, count when set.</summary>
    public ulong InUse
    {
        get
        {
            ulong bv = XstateBv, used = bv & 3;
            foreach (var s in Layout)
                if ((bv & (1UL << s.Component)) != 0 && Area.AsSpan(s.Offset, s.Size).ContainsAnyExcept((byte)0))
                    used |= 1UL << s.Component;
            return used;
        }
    }

    /// <summary>
    /// This state in the layout of a vCPU whose own current area is <paramref name="own"/> (standard format, this
    /// host's offsets) and whose XCR0 is <paramref name="ownXcr0"/>: <paramref name="own"/> with the legacy region, the
    /// components and XSTATE_BV replaced by this state's. Components the receiver has but this state lacks, or holds
    /// in their initial state, become initial; PKRU stays the receiver's (the sandbox offers no protection keys: it is
    /// the platform's, like the segment selectors); MXCSR_MASK and the software-reserved bytes stay the receiver's.
    /// </summary>
    /// <exception cref="SandboxException">A component in use here that the receiver does not have: one line naming it.</exception>
    public byte[] ToArea(ReadOnlySpan<byte> own, ulong ownXcr0, string receiver)
    {
        if (own.Length < XsaveLayout.HeaderEnd) throw new SandboxException($"the vCPU's XSAVE area has {own.Length} bytes");
        ownXcr0 |= 3;
        const ulong pkru = 1UL << XsaveLayout.Pkru;
        var target = new Dictionary<int, (int Offset, int Size)>();
        for (int i = 2; i < 63; i++)
        {
            if ((ownXcr0 & (1UL << i)) == 0) continue;
            var (offset, size) = XsaveLayout.HostLayout(i);
            if (size > 0 && offset + size <= own.Length) target[i] = (offset, size);
        }

        ulong inUse = InUse & ~pkru, missing = 0;
        foreach (var s in Layout)
            if ((inUse & (1UL << s.Component)) != 0 && (!target.TryGetValue(s.Component, out var t) || t.Size != s.Size))
                missing |= 1UL << s.Component;
        if (missing != 0)
            throw new SandboxException(
                $"the checkpoint's vCPU has {XsaveLayout.Names(missing)} state in use, which the {receiver} vCPU here does not have " +
                $"(XCR0 0x{ownXcr0:x}, the checkpoint's 0x{Xcr0:x}): restore it where the CPU offers {XsaveLayout.Names(missing)}");

        byte[] result = own.ToArray();
        // Legacy region: FCW..XMM15 (0..159 + 160..415) and the reserved bytes up to 463, but the receiver's MXCSR_MASK.
        Area.AsSpan(0, 28).CopyTo(result);
        Area.AsSpan(32, XsaveLayout.SoftwareReserved - 32).CopyTo(result.AsSpan(32));
        ulong bv = (XstateBv & 3) | (BinaryPrimitives.ReadUInt64LittleEndian(own[XsaveLayout.XstateBvOffset..]) & pkru);
        foreach (var (component, (offset, size)) in target)
        {
            if (component == XsaveLayout.Pkru) continue;
            var dest = result.AsSpan(offset, size);
            dest.Clear();
            if ((inUse & (1UL << component)) == 0) continue;
            var from = Layout.First(s => s.Component == component);
            Area.AsSpan(from.Offset, from.Size).CopyTo(dest);
            bv |= 1UL << component;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(result.AsSpan(XsaveLayout.XstateBvOffset), bv);
        BinaryPrimitives.WriteUInt64LittleEndian(result.AsSpan(XsaveLayout.XcompBvOffset), 0);
        return result;
    }

    public int SerializedSize => 16 + Layout.Count * SlotBytes + Area.Length;

    public byte[] Serialize()
    {
        var b = new byte[SerializedSize];
        BinaryPrimitives.WriteUInt64LittleEndian(b, Xcr0);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), (uint)Area.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), (uint)Layout.Count);
        int at = 16;
        foreach (var s in Layout)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)s.Component);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 4), (uint)s.Offset);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 8), (uint)s.Size);
            at += SlotBytes;
        }
        Area.CopyTo(b, at);
        return b;
    }

    /// <summary>
    /// <c>FromHostArea(area, xcr0).Serialize()</c> into <paramref name="into"/>, kept by the caller, with nothing
    /// allocated (a checkpoint takes it every epoch: issue 14). Returns the bytes written; <paramref name="into"/> needs
    /// at least 16 + 16 × 61 + <c>area.Length</c> bytes (<see cref="MaxSerializedSize"/>).
    /// </summary>
    public static int SerializeHostArea(ReadOnlySpan<byte> area, ulong xcr0, Span<byte> into)
    {
        if (area.Length < XsaveLayout.HeaderEnd || area.Length > MaxAreaSize)
            throw new SandboxException($"the XSAVE area has {area.Length} bytes");
        if (BinaryPrimitives.ReadUInt64LittleEndian(area[XsaveLayout.XcompBvOffset..]) != 0)
            throw new SandboxException("the XSAVE area is in the compacted format");
        if (into.Length < MaxSerializedSize(area.Length))
            throw new ArgumentException($"the serialized state needs up to {MaxSerializedSize(area.Length)} bytes", nameof(into));
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(area[XsaveLayout.XstateBvOffset..]);
        xcr0 = (xcr0 | bv | 3) & XsaveLayout.UserMask;
        int at = 16, count = 0;
        for (int i = 2; i < 63; i++) // as FromHostArea
        {
            if ((xcr0 & (1UL << i)) == 0) continue;
            var (offset, size) = XsaveLayout.HostLayout(i);
            if (size == 0 || offset + size > area.Length)
            {
                if ((bv & (1UL << i)) != 0)
                    throw new SandboxException($"the XSAVE area holds {XsaveLayout.Name(i)} state where this CPU has none");
                xcr0 &= ~(1UL << i);
                continue;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(into[at..], (uint)i);
            BinaryPrimitives.WriteUInt32LittleEndian(into[(at + 4)..], (uint)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(into[(at + 8)..], (uint)size);
            BinaryPrimitives.WriteUInt32LittleEndian(into[(at + 12)..], 0);
            at += SlotBytes;
            count++;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(into, xcr0);
        BinaryPrimitives.WriteUInt32LittleEndian(into[8..], (uint)area.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(into[12..], (uint)count);
        var copy = into.Slice(at, area.Length);
        area.CopyTo(copy);
        copy[XsaveLayout.SoftwareReserved..XsaveLayout.SoftwareReservedEnd].Clear();
        return at + area.Length;
    }

    /// <summary>The most bytes <see cref="SerializeHostArea"/> writes for an area of <paramref name="areaLength"/> bytes.</summary>
    public static int MaxSerializedSize(int areaLength) => 16 + 61 * SlotBytes + areaLength;

    /// <summary>Reads what <see cref="Serialize"/> wrote (exactly), checking every field.</summary>
    /// <exception cref="InvalidDataException">Truncated, inconsistent or not in the standard format.</exception>
    public static FpuState Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < 16) throw new InvalidDataException("the FPU state is truncated");
        ulong xcr0 = BinaryPrimitives.ReadUInt64LittleEndian(data);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]), count = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if ((xcr0 & 3) != 3 || (xcr0 & ~XsaveLayout.UserMask) != 0) throw new InvalidDataException($"the FPU state's XCR0 0x{xcr0:x} is invalid");
        if (length < XsaveLayout.HeaderEnd || length > MaxAreaSize) throw new InvalidDataException($"the FPU state's XSAVE area has {length} bytes");
        if (count > 61) throw new InvalidDataException($"the FPU state lists {count} components");
        if (data.Length != 16 + (long)count * SlotBytes + length)
            throw new InvalidDataException($"the FPU state has {data.Length} bytes, its fields say {16 + (long)count * SlotBytes + length}");
        var slots = new Slot[count];
        ulong listed = 3;
        for (int n = 0; n < count; n++)
        {
            var e = data.Slice(16 + n * SlotBytes, SlotBytes);
            uint c = BinaryPrimitives.ReadUInt32LittleEndian(e), offset = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]), reserved = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
            if (c < 2 || c > 62 || (xcr0 & (1UL << (int)c)) == 0 || (listed & (1UL << (int)c)) != 0 || reserved != 0
                || offset < XsaveLayout.HeaderEnd || size == 0 || offset + (ulong)size > length)
                throw new InvalidDataException($"the FPU state's layout entry {n} (component {c}, offset {offset}, size {size}) is invalid");
            listed |= 1UL << (int)c;
            slots[n] = new Slot((int)c, (int)offset, (int)size);
        }
        if (listed != xcr0) throw new InvalidDataException($"the FPU state's layout lists components 0x{listed:x}, its XCR0 is 0x{xcr0:x}");
        byte[] area = data[(16 + (int)count * SlotBytes)..].ToArray();
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(area.AsSpan(XsaveLayout.XstateBvOffset));
        if ((bv & ~xcr0) != 0) throw new InvalidDataException($"the FPU state's XSTATE_BV 0x{bv:x} is outside its XCR0 0x{xcr0:x}");
        if (BinaryPrimitives.ReadUInt64LittleEndian(area.AsSpan(XsaveLayout.XcompBvOffset)) != 0)
            throw new InvalidDataException("the FPU state's XSAVE area is not in the standard format");
        return new FpuState(xcr0, area, slots);
    }
}
