using Remus.Kvm;
using Xunit;

namespace Remus.Tests.Kvm;

public sealed class VcpuStateTests
{
    /// <summary>A state with a distinct value in every stored field.</summary>
    internal static VcpuState Sample(bool lapic, int xsaveSize = 4096)
    {
        var rng = new Random(1234);
        ulong U64() => (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
        byte U8() => (byte)rng.Next(256);
        KvmSegment Seg() => new()
        {
            Base = U64(), Limit = (uint)rng.Next(), Selector = (ushort)rng.Next(65536), Type = U8(), Present = U8(),
            Dpl = U8(), Db = U8(), S = U8(), L = U8(), G = U8(), Avl = U8(), Unusable = U8(),
        };

        var s = new VcpuState { MpState = new KvmMpState(3) };
        s.Regs = new KvmRegs
        {
            Rax = U64(), Rbx = U64(), Rcx = U64(), Rdx = U64(), Rsi = U64(), Rdi = U64(), Rsp = U64(), Rbp = U64(),
            R8 = U64(), R9 = U64(), R10 = U64(), R11 = U64(), R12 = U64(), R13 = U64(), R14 = U64(), R15 = U64(),
            Rip = U64(), Rflags = U64(),
        };
        s.Sregs = new KvmSregs
        {
            Cs = Seg(), Ds = Seg(), Es = Seg(), Fs = Seg(), Gs = Seg(), Ss = Seg(), Tr = Seg(), Ldt = Seg(),
            Gdt = new KvmDtable { Base = U64(), Limit = (ushort)rng.Next(65536) },
            Idt = new KvmDtable { Base = U64(), Limit = (ushort)rng.Next(65536) },
            Cr0 = U64(), Cr2 = U64(), Cr3 = U64(), Cr4 = U64(), Cr8 = U64(), Efer = U64(), ApicBase = U64(),
        };
        s.Sregs.InterruptBitmapSpan[2] = 1UL << 17;
        s.Xsave = new byte[xsaveSize];
        rng.NextBytes(s.Xsave);
        s.Xcrs = KvmXcrs.WithXcr0(7);
        s.Xcrs.NrXcrs = 2;
        s.Xcrs.Xcrs[1].Xcr = 1;
        s.Xcrs.Xcrs[1].Value = U64();
        s.DebugRegs.DbSpan[0] = U64();
        s.DebugRegs.DbSpan[3] = U64();
        s.DebugRegs.Dr6 = U64();
        s.DebugRegs.Dr7 = U64();
        s.DebugRegs.Flags = 0;
        if (lapic)
        {
            KvmLapicState l = default;
            rng.NextBytes(l.Bytes);
            s.Lapic = l;
        }
        s.Msrs = [new KvmMsrEntry(VcpuState.MSR_LSTAR, U64()), new KvmMsrEntry(VcpuState.MSR_IA32_TSC, U64())];
        s.Events.Exception = new KvmVcpuEventsException { Injected = 1, Nr = 14, HasErrorCode = 1, Pending = 0, ErrorCode = 6 };
        s.Events.Interrupt = new KvmVcpuEventsInterrupt { Injected = 1, Nr = 0x20, Soft = 0, Shadow = 2 };
        s.Events.Nmi = new KvmVcpuEventsNmi { Injected = 0, Pending = 1, Masked = 1 };
        s.Events.SipiVector = 0x9a;
        s.Events.Flags = 0x1d;
        s.Events.Smi = new KvmVcpuEventsSmi { Smm = 1, Pending = 0, SmmInsideNmi = 1, LatchedInit = 1 };
        s.Events.TripleFault.Pending = 1;
        s.Events.ExceptionHasPayload = 1;
        s.Events.ExceptionPayload = U64();
        return s;
    }

    [Theory]
    [InlineData(true, 4096)]
    [InlineData(false, 4096)]
    [InlineData(false, 11008)]
    public void Serialization_round_trips(bool lapic, int xsaveSize)
    {
        var original = Sample(lapic, xsaveSize);
        byte[] bytes = original.Serialize();
        Assert.Equal(original.SerializedSize, bytes.Length);

        var copy = VcpuState.Deserialize(bytes);
        Assert.Equal(bytes, copy.Serialize());

        Assert.Equal(original.MpState.MpState, copy.MpState.MpState);
        Assert.Equal(original.Regs, copy.Regs);
        Assert.Equal(original.Sregs.Cs, copy.Sregs.Cs);
        Assert.Equal(original.Sregs.Tr, copy.Sregs.Tr);
        Assert.Equal(original.Sregs.Gdt.Base, copy.Sregs.Gdt.Base);
        Assert.Equal(original.Sregs.Idt.Limit, copy.Sregs.Idt.Limit);
        Assert.Equal(original.Sregs.Efer, copy.Sregs.Efer);
        Assert.Equal(1UL << 17, copy.Sregs.InterruptBitmapSpan[2]);
        Assert.Equal(original.Xsave, copy.Xsave);
        Assert.Equal(2u, copy.Xcrs.NrXcrs);
        Assert.Equal(7UL, copy.Xcrs.Xcrs[0].Value);
        Assert.Equal(original.Xcrs.Xcrs[1].Value, copy.Xcrs.Xcrs[1].Value);
        Assert.Equal(original.DebugRegs.DbSpan[3], copy.DebugRegs.DbSpan[3]);
        Assert.Equal(original.DebugRegs.Dr7, copy.DebugRegs.Dr7);
        Assert.Equal(lapic, copy.Lapic.HasValue);
        if (lapic)
        {
            var a = original.Lapic!.Value;
            var b = copy.Lapic!.Value;
            Assert.True(a.Bytes.SequenceEqual(b.Bytes));
        }
        Assert.Equal(original.Msrs, copy.Msrs);
        Assert.Equal(original.Events.Exception, copy.Events.Exception);
        Assert.Equal(original.Events.Interrupt, copy.Events.Interrupt);
        Assert.Equal(original.Events.Nmi, copy.Events.Nmi);
        Assert.Equal(original.Events.Smi, copy.Events.Smi);
        Assert.Equal(original.Events.SipiVector, copy.Events.SipiVector);
        Assert.Equal(original.Events.Flags, copy.Events.Flags);
        Assert.Equal(1, copy.Events.TripleFault.Pending);
        Assert.Equal(original.Events.ExceptionPayload, copy.Events.ExceptionPayload);
    }

    [Fact]
    public void Format_starts_with_magic_and_version()
    {
        byte[] bytes = Sample(lapic: false).Serialize();
        Assert.Equal("RVCS"u8.ToArray(), bytes[..4]);
        Assert.Equal(new byte[] { 1, 0 }, bytes[4..6]);
    }

    [Fact]
    public void Corrupt_data_is_rejected()
    {
        byte[] bytes = Sample(lapic: true).Serialize();

        var badMagic = (byte[])bytes.Clone();
        badMagic[0] ^= 0xff;
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => VcpuState.Deserialize(badMagic)).Message);

        var badVersion = (byte[])bytes.Clone();
        badVersion[4] = 2;
        Assert.Contains("version 2", Assert.Throws<InvalidDataException>(() => VcpuState.Deserialize(badVersion)).Message);

        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => VcpuState.Deserialize(bytes.AsSpan(0, bytes.Length - 1))).Message);

        byte[] longer = [.. bytes, 0];
        Assert.Contains("trailing", Assert.Throws<InvalidDataException>(() => VcpuState.Deserialize(longer)).Message);
    }
}
