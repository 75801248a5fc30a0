using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>
/// Everything KVM holds for one x86 vCPU that a checkpoint must carry, captured and restored in the order Firecracker
/// restores it: mp_state, regs, sregs, xsave, xcrs, debugregs, lapic, msrs, vcpu_events. CPUID is configuration, not
/// state: set the same CPUID (<see cref="KvmVcpu.SetCpuid2"/>) on the target vCPU before <see cref="Restore"/>. The
/// legacy FPU (KVM_GET_FPU) is not kept: XSAVE is a superset of it.
/// <para>Serialized form (<see cref="Serialize()"/>), all little-endian:
/// <c>u32 magic "RVCS", u16 version (1), u16 flags (bit 0: lapic present), u32 mp_state, regs (18 × u64),
/// sregs (8 segments × [u64 base, u32 limit, u16 selector, 9 × u8 type..unusable], 2 dtables × [u64 base, u16 limit],
/// cr0 cr2 cr3 cr4 cr8 efer apic_base, interrupt_bitmap[4]), u32 xsave length + bytes, xcrs (u32 nr, u32 flags,
/// nr × [u32 xcr, u64 value]), debugregs (db[4], dr6, dr7, flags), lapic (1024 bytes, if flagged), msrs (u32 count,
/// count × [u32 index, u64 data]), vcpu_events (exception 4 × u8 + u32, interrupt 4 × u8, nmi 3 × u8, u32 sipi_vector,
/// u32 flags, smi 4 × u8, u8 triple_fault.pending, u8 exception_has_payload, u64 exception_payload)</c>.
/// Padding and reserved fields are not stored (they are zero).</para>
/// </summary>
public sealed class VcpuState
{
    /// <summary>"RVCS" read as a little-endian u32.</summary>
    public const uint Magic = 0x53435652;
    public const ushort FormatVersion = 1;
    private const ushort FlagLapic = 1;
    private const int MaxXsaveSize = 1 << 20;
    private const int MaxMsrs = 4096;

    // MSR numbers (Intel SDM vol. 4; the same on AMD).
    public const uint MSR_IA32_TSC = 0x10;
    public const uint MSR_IA32_SYSENTER_CS = 0x174;
    public const uint MSR_IA32_SYSENTER_ESP = 0x175;
    public const uint MSR_IA32_SYSENTER_EIP = 0x176;
    public const uint MSR_IA32_MISC_ENABLE = 0x1a0;
    public const uint MSR_IA32_CR_PAT = 0x277;
    public const uint MSR_IA32_TSC_DEADLINE = 0x6e0;
    public const uint MSR_STAR = 0xc0000081;
    public const uint MSR_LSTAR = 0xc0000082;
    public const uint MSR_CSTAR = 0xc0000083;
    public const uint MSR_SYSCALL_MASK = 0xc0000084;
    public const uint MSR_KERNEL_GS_BASE = 0xc0000102;
    public const uint MSR_TSC_AUX = 0xc0000103;

    /// <summary>
    /// The MSRs <see cref="Capture(KvmVcpu, bool)"/> saves by default: what a long-mode guest without a kernel of its own
    /// can change or observe (SYSCALL/SYSENTER entry points, KERNEL_GS_BASE, PAT, MISC_ENABLE, TSC, TSC_AUX).
    /// EFER, FS.base and GS.base travel in sregs. A full-system guest should pass
    /// <see cref="KvmSystem.GetMsrIndexList"/> instead.
    /// </summary>
    public static IReadOnlyList<uint> DefaultMsrIndices { get; } =
    [
        MSR_IA32_TSC, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_MISC_ENABLE,
        MSR_IA32_CR_PAT, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
    ];

    public KvmMpState MpState;
    public KvmRegs Regs;
    public KvmSregs Sregs;
    /// <summary>The XSAVE area (4096 bytes, or the vCPU's <see cref="KvmVcpu.XsaveSize"/>).</summary>
    public byte[] Xsave = new byte[KvmXsave.Size];
    public KvmXcrs Xcrs;
    public KvmDebugRegs DebugRegs;
    /// <summary>The local APIC page, present only when the VM has an in-kernel irqchip.</summary>
    public KvmLapicState? Lapic;
    public KvmMsrEntry[] Msrs = [];
    public KvmVcpuEvents Events;

    /// <summary>Captures with <see cref="DefaultMsrIndices"/>.</summary>
    public static VcpuState Capture(KvmVcpu vcpu, bool completePendingIo = true) =>
        Capture(vcpu, DefaultMsrIndices.ToArray(), completePendingIo);

    /// <summary>
    /// Reads the vCPU's state. The vCPU must not be running (its own thread is the natural caller).
    /// <para>An I/O or MMIO exit is only half done until the next KVM_RUN (for <c>out</c>, rip still points at the
    /// instruction), and KVM keeps that half invisibly. With <paramref name="completePendingIo"/> (the default) the
    /// vCPU is first re-entered with immediate_exit set, which finishes the instruction without running the guest
    /// further (<see cref="CompletePendingIo"/>); for an IN or MMIO read the caller must have filled in the data.
    /// Pass false to capture the state as of the exit and handle re-execution yourself.</para>
    /// MSRs KVM refuses to read (not present for this vCPU) are left out.
    /// </summary>
    public static VcpuState Capture(KvmVcpu vcpu, ReadOnlySpan<uint> msrIndices, bool completePendingIo = true)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        if (completePendingIo) CompletePendingIo(vcpu);
        var s = new VcpuState
        {
            MpState = vcpu.GetMpState(),
            Regs = vcpu.GetRegs(),
            Sregs = vcpu.GetSregs(),
            Xsave = vcpu.GetXsave(),
            Xcrs = vcpu.GetXcrs(),
            DebugRegs = vcpu.GetDebugRegs(),
            Lapic = vcpu.Vm.HasIrqchip ? vcpu.GetLapic() : null,
            Msrs = ReadMsrs(vcpu, msrIndices),
            Events = vcpu.GetVcpuEvents(),
        };
        return s;
    }

    /// <summary>
    /// Re-enters KVM_RUN with immediate_exit set so KVM finishes a pending I/O or MMIO instruction without running the
    /// guest any further (Documentation/virt/kvm/api.rst, "immediate_exit"). Harmless when nothing is pending.
    /// </summary>
    /// <exception cref="KvmException">Completing the instruction needed another exit to user space (string I/O
    /// crossing a page); that exit is left in kvm_run for the caller to serve.</exception>
    public static void CompletePendingIo(KvmVcpu vcpu)
    {
        bool wasSet = vcpu.ImmediateExit;
        vcpu.ImmediateExit = true;
        KvmExit exit;
        try
        {
            exit = vcpu.Run();
        }
        finally
        {
            vcpu.ImmediateExit = wasSet;
        }
        if (!exit.Interrupted)
            throw new KvmException($"completing the pending I/O of vCPU {vcpu.Id} produced another exit ({exit}); serve it and capture again");
    }

    private static KvmMsrEntry[] ReadMsrs(KvmVcpu vcpu, ReadOnlySpan<uint> indices)
    {
        var entries = new KvmMsrEntry[indices.Length];
        for (int i = 0; i < indices.Length; i++) entries[i] = new KvmMsrEntry(indices[i]);
        var kept = new List<KvmMsrEntry>(entries.Length);
        int start = 0;
        while (start < entries.Length)
        {
            int read = vcpu.GetMsrs(entries.AsSpan(start));
            kept.AddRange(entries.AsSpan(start, read));
            start += read + 1; // KVM stopped at entries[start + read]: it cannot be read, skip it.
        }
        return kept.ToArray();
    }

    /// <summary>
    /// Writes this state into <paramref name="vcpu"/> in Firecracker's order: mp_state, regs, sregs, xsave, xcrs,
    /// debugregs, lapic, msrs (TSC_DEADLINE after TSC), vcpu_events. Set CPUID first.
    /// </summary>
    public void Restore(KvmVcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        if (Lapic is not null && !vcpu.Vm.HasIrqchip)
            throw new KvmException("the state has a local APIC but the target VM has no in-kernel irqchip");
        vcpu.SetMpState(MpState);
        vcpu.SetRegs(Regs);
        vcpu.SetSregs(Sregs);
        vcpu.SetXsave(Xsave);
        vcpu.SetXcrs(Xcrs);
        vcpu.SetDebugRegs(DebugRegs);
        if (Lapic is { } lapic) vcpu.SetLapic(lapic);
        // TSC_DEADLINE is interpreted against the TSC, so it goes last (as Firecracker does).
        var first = Msrs.Where(m => m.Index != MSR_IA32_TSC_DEADLINE).ToArray();
        var deferred = Msrs.Where(m => m.Index == MSR_IA32_TSC_DEADLINE).ToArray();
        SetAllMsrs(vcpu, first);
        SetAllMsrs(vcpu, deferred);
        vcpu.SetVcpuEvents(Events);
    }

    private static void SetAllMsrs(KvmVcpu vcpu, KvmMsrEntry[] msrs)
    {
        int written = vcpu.SetMsrs(msrs);
        if (written != msrs.Length)
            throw new KvmException($"KVM_SET_MSRS: vCPU {vcpu.Id} refused MSR 0x{msrs[written].Index:x} = 0x{msrs[written].Data:x}");
    }

    // ---- serialization ---------------------------------------------------------------------------------------

    private const int SegmentBytes = 8 + 4 + 2 + 9;
    private const int DtableBytes = 8 + 2;
    private const int SregsBytes = 8 * SegmentBytes + 2 * DtableBytes + 7 * 8 + 4 * 8;
    private const int EventsBytes = 8 + 4 + 3 + 4 + 4 + 4 + 1 + 1 + 8;

    /// <summary>Bytes <see cref="Serialize(Span{byte})"/> writes.</summary>
    public int SerializedSize =>
        4 + 2 + 2 + 4 + 18 * 8 + SregsBytes + 4 + Xsave.Length + 8 + (int)Math.Min(Xcrs.NrXcrs, KvmConstants.KVM_MAX_XCRS) * 12
        + 7 * 8 + (Lapic is null ? 0 : KvmLapicState.Size) + 4 + Msrs.Length * 12 + EventsBytes;

    public byte[] Serialize()
    {
        byte[] buffer = new byte[SerializedSize];
        int n = Serialize(buffer);
        return n == buffer.Length ? buffer : throw new InvalidOperationException("VcpuState size mismatch");
    }

    /// <summary>Writes the versioned binary form into <paramref name="destination"/>; returns the bytes written.</summary>
    public int Serialize(Span<byte> destination)
    {
        if (Xsave is null || Xsave.Length < KvmXsave.Size || Xsave.Length > MaxXsaveSize)
            throw new InvalidOperationException($"the XSAVE area must have {KvmXsave.Size}..{MaxXsaveSize} bytes");
        if (Xcrs.NrXcrs > KvmConstants.KVM_MAX_XCRS) throw new InvalidOperationException("more than KVM_MAX_XCRS xcrs");
        var w = new LittleEndianWriter(destination);
        w.U32(Magic);
        w.U16(FormatVersion);
        w.U16(Lapic is null ? (ushort)0 : FlagLapic);
        w.U32(MpState.MpState);

        var r = Regs;
        foreach (ulong v in (ReadOnlySpan<ulong>)[r.Rax, r.Rbx, r.Rcx, r.Rdx, r.Rsi, r.Rdi, r.Rsp, r.Rbp,
                     r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.Rip, r.Rflags])
            w.U64(v);

        var s = Sregs;
        foreach (var seg in (ReadOnlySpan<KvmSegment>)[s.Cs, s.Ds, s.Es, s.Fs, s.Gs, s.Ss, s.Tr, s.Ldt]) WriteSegment(ref w, seg);
        WriteDtable(ref w, s.Gdt);
        WriteDtable(ref w, s.Idt);
        foreach (ulong v in (ReadOnlySpan<ulong>)[s.Cr0, s.Cr2, s.Cr3, s.Cr4, s.Cr8, s.Efer, s.ApicBase]) w.U64(v);
        foreach (ulong v in s.InterruptBitmapSpan) w.U64(v);

        w.U32((uint)Xsave.Length);
        w.Bytes(Xsave);

        var x = Xcrs;
        w.U32(x.NrXcrs);
        w.U32(x.Flags);
        for (int i = 0; i < x.NrXcrs; i++)
        {
            w.U32(x.Xcrs[i].Xcr);
            w.U64(x.Xcrs[i].Value);
        }

        var d = DebugRegs;
        foreach (ulong v in d.DbSpan) w.U64(v);
        w.U64(d.Dr6);
        w.U64(d.Dr7);
        w.U64(d.Flags);

        if (Lapic is { } lapic) w.Bytes(lapic.Bytes);

        w.U32((uint)Msrs.Length);
        foreach (var m in Msrs)
        {
            w.U32(m.Index);
            w.U64(m.Data);
        }

        var e = Events;
        w.U8(e.Exception.Injected);
        w.U8(e.Exception.Nr);
        w.U8(e.Exception.HasErrorCode);
        w.U8(e.Exception.Pending);
        w.U32(e.Exception.ErrorCode);
        w.U8(e.Interrupt.Injected);
        w.U8(e.Interrupt.Nr);
        w.U8(e.Interrupt.Soft);
        w.U8(e.Interrupt.Shadow);
        w.U8(e.Nmi.Injected);
        w.U8(e.Nmi.Pending);
        w.U8(e.Nmi.Masked);
        w.U32(e.SipiVector);
        w.U32(e.Flags);
        w.U8(e.Smi.Smm);
        w.U8(e.Smi.Pending);
        w.U8(e.Smi.SmmInsideNmi);
        w.U8(e.Smi.LatchedInit);
        w.U8(e.TripleFault.Pending);
        w.U8(e.ExceptionHasPayload);
        w.U64(e.ExceptionPayload);
        return w.Position;
    }

    private static void WriteSegment(ref LittleEndianWriter w, in KvmSegment s)
    {
        w.U64(s.Base);
        w.U32(s.Limit);
        w.U16(s.Selector);
        w.U8(s.Type);
        w.U8(s.Present);
        w.U8(s.Dpl);
        w.U8(s.Db);
        w.U8(s.S);
        w.U8(s.L);
        w.U8(s.G);
        w.U8(s.Avl);
        w.U8(s.Unusable);
    }

    private static void WriteDtable(ref LittleEndianWriter w, in KvmDtable t)
    {
        w.U64(t.Base);
        w.U16(t.Limit);
    }

    /// <summary>Reads the form written by <see cref="Serialize(Span{byte})"/>; the span must hold exactly one state.</summary>
    /// <exception cref="InvalidDataException">Wrong magic or version, truncated, or inconsistent data.</exception>
    public static VcpuState Deserialize(ReadOnlySpan<byte> data)
    {
        var rd = new LittleEndianReader(data, "vCPU state");
        uint magic = rd.U32();
        if (magic != Magic) throw new InvalidDataException($"not a vCPU state (magic 0x{magic:x8})");
        ushort version = rd.U16();
        if (version != FormatVersion) throw new InvalidDataException($"vCPU state version {version} is not supported (expected {FormatVersion})");
        ushort flags = rd.U16();
        if ((flags & ~FlagLapic) != 0) throw new InvalidDataException($"vCPU state has unknown flags 0x{flags:x}");

        var s = new VcpuState { MpState = new KvmMpState(rd.U32()) };

        ref var r = ref s.Regs;
        r.Rax = rd.U64(); r.Rbx = rd.U64(); r.Rcx = rd.U64(); r.Rdx = rd.U64();
        r.Rsi = rd.U64(); r.Rdi = rd.U64(); r.Rsp = rd.U64(); r.Rbp = rd.U64();
        r.R8 = rd.U64(); r.R9 = rd.U64(); r.R10 = rd.U64(); r.R11 = rd.U64();
        r.R12 = rd.U64(); r.R13 = rd.U64(); r.R14 = rd.U64(); r.R15 = rd.U64();
        r.Rip = rd.U64(); r.Rflags = rd.U64();

        ref var sr = ref s.Sregs;
        sr.Cs = ReadSegment(ref rd); sr.Ds = ReadSegment(ref rd); sr.Es = ReadSegment(ref rd);
        sr.Fs = ReadSegment(ref rd); sr.Gs = ReadSegment(ref rd); sr.Ss = ReadSegment(ref rd);
        sr.Tr = ReadSegment(ref rd); sr.Ldt = ReadSegment(ref rd);
        sr.Gdt = ReadDtable(ref rd);
        sr.Idt = ReadDtable(ref rd);
        sr.Cr0 = rd.U64(); sr.Cr2 = rd.U64(); sr.Cr3 = rd.U64(); sr.Cr4 = rd.U64(); sr.Cr8 = rd.U64();
        sr.Efer = rd.U64(); sr.ApicBase = rd.U64();
        var bitmap = sr.InterruptBitmapSpan;
        for (int i = 0; i < bitmap.Length; i++) bitmap[i] = rd.U64();

        uint xsaveLength = rd.U32();
        if (xsaveLength < KvmXsave.Size || xsaveLength > MaxXsaveSize)
            throw new InvalidDataException($"vCPU state has an XSAVE area of {xsaveLength} bytes");
        s.Xsave = rd.Bytes((int)xsaveLength).ToArray();

        ref var x = ref s.Xcrs;
        x.NrXcrs = rd.U32();
        x.Flags = rd.U32();
        if (x.NrXcrs > KvmConstants.KVM_MAX_XCRS) throw new InvalidDataException($"vCPU state has {x.NrXcrs} xcrs");
        for (int i = 0; i < x.NrXcrs; i++)
        {
            x.Xcrs[i].Xcr = rd.U32();
            x.Xcrs[i].Value = rd.U64();
        }

        ref var d = ref s.DebugRegs;
        var db = d.DbSpan;
        for (int i = 0; i < db.Length; i++) db[i] = rd.U64();
        d.Dr6 = rd.U64();
        d.Dr7 = rd.U64();
        d.Flags = rd.U64();

        if ((flags & FlagLapic) != 0)
        {
            KvmLapicState lapic = default;
            rd.Bytes(KvmLapicState.Size).CopyTo(lapic.Bytes);
            s.Lapic = lapic;
        }

        uint msrCount = rd.U32();
        if (msrCount > MaxMsrs || msrCount * 12L > rd.Remaining) throw new InvalidDataException($"vCPU state claims {msrCount} MSRs");
        s.Msrs = new KvmMsrEntry[msrCount];
        for (int i = 0; i < msrCount; i++)
        {
            uint index = rd.U32();
            s.Msrs[i] = new KvmMsrEntry(index, rd.U64());
        }

        ref var e = ref s.Events;
        e.Exception.Injected = rd.U8();
        e.Exception.Nr = rd.U8();
        e.Exception.HasErrorCode = rd.U8();
        e.Exception.Pending = rd.U8();
        e.Exception.ErrorCode = rd.U32();
        e.Interrupt.Injected = rd.U8();
        e.Interrupt.Nr = rd.U8();
        e.Interrupt.Soft = rd.U8();
        e.Interrupt.Shadow = rd.U8();
        e.Nmi.Injected = rd.U8();
        e.Nmi.Pending = rd.U8();
        e.Nmi.Masked = rd.U8();
        e.SipiVector = rd.U32();
        e.Flags = rd.U32();
        e.Smi.Smm = rd.U8();
        e.Smi.Pending = rd.U8();
        e.Smi.SmmInsideNmi = rd.U8();
        e.Smi.LatchedInit = rd.U8();
        e.TripleFault.Pending = rd.U8();
        e.ExceptionHasPayload = rd.U8();
        e.ExceptionPayload = rd.U64();

        if (rd.Remaining != 0) throw new InvalidDataException($"vCPU state has {rd.Remaining} trailing bytes");
        return s;
    }

    private static KvmSegment ReadSegment(ref LittleEndianReader rd) => new()
    {
        Base = rd.U64(),
        Limit = rd.U32(),
        Selector = rd.U16(),
        Type = rd.U8(),
        Present = rd.U8(),
        Dpl = rd.U8(),
        Db = rd.U8(),
        S = rd.U8(),
        L = rd.U8(),
        G = rd.U8(),
        Avl = rd.U8(),
        Unusable = rd.U8(),
    };

    private static KvmDtable ReadDtable(ref LittleEndianReader rd) => new() { Base = rd.U64(), Limit = rd.U16() };
}
