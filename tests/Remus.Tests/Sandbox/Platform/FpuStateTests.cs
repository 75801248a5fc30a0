using System.Buffers.Binary;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// The neutral FPU state (<see cref="FpuState"/>): components move between layouts by their recorded offsets; a
/// component the source had in use and the receiver lacks is refused in one line naming it; one in its initial state
/// is not.
/// </summary>
public class FpuStateTests
{
    private const int Avx = 2, Hi16Zmm = 7;

    /// <summary>A serialized state whose XCR0 has x87, SSE, AVX and Hi16_ZMM, laid out as AVX at 576 and Hi16_ZMM at
    /// 832 (no such CPU exists; the point is that the layout is the stream's, not assumed).</summary>
    private static byte[] Serialized(ulong xstateBv, byte hi16Fill, byte avxFill = 0, byte xmm0 = 0x11)
    {
        const int area = 832 + 1024;
        var b = new byte[16 + 2 * 16 + area];
        BinaryPrimitives.WriteUInt64LittleEndian(b, 0x87);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), area);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), 2);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), Avx);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), 576);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), 256);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(32), Hi16Zmm);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(36), 832);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(40), 1024);
        var a = b.AsSpan(48);
        BinaryPrimitives.WriteUInt16LittleEndian(a, 0x37f);              // FCW
        BinaryPrimitives.WriteUInt32LittleEndian(a[24..], 0x1f80);       // MXCSR
        a.Slice(160, 16).Fill(xmm0);                                     // xmm0
        a.Slice(576, 256).Fill(avxFill);
        a.Slice(832, 1024).Fill(hi16Fill);
        BinaryPrimitives.WriteUInt64LittleEndian(a[512..], xstateBv);
        return b;
    }

    /// <summary>A receiver's own area: this host's layout for XCR0 x87|SSE(|AVX), all initial.</summary>
    private static (byte[] Area, ulong Xcr0) Receiver()
    {
        var (offset, size) = XsaveLayout.HostLayout(Avx);
        ulong xcr0 = size == 0 ? 3UL : 7UL;
        var area = new byte[Math.Max(XsaveLayout.HeaderEnd, offset + size)];
        BinaryPrimitives.WriteUInt32LittleEndian(area.AsSpan(28), 0xffff); // MXCSR_MASK: stays the receiver's
        return (area, xcr0);
    }

    [Fact]
    public void A_component_in_use_that_the_receiver_lacks_is_refused_in_one_line_naming_it()
    {
        var state = FpuState.Parse(Serialized(xstateBv: 0x83, hi16Fill: 0x5a));
        Assert.Equal(0x83UL, state.InUse);
        var (own, xcr0) = Receiver();
        var e = Assert.Throws<SandboxException>(() => state.ToArea(own, xcr0, "kvm"));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("AVX-512 Hi16_ZMM (zmm16-31)", e.Message);
        Assert.Contains("in use", e.Message);
        Assert.Contains("kvm vCPU", e.Message);
    }

    [Fact]
    public void A_component_in_its_initial_state_is_no_reason_to_refuse()
    {
        var (own, xcr0) = Receiver();
        // Not in XSTATE_BV at all, and set in XSTATE_BV but all zeros (what XSAVE may report after the registers
        // were zeroed): both initial.
        foreach (ulong bv in new[] { 0x3UL, 0x83UL })
        {
            var state = FpuState.Parse(Serialized(bv, hi16Fill: 0));
            Assert.Equal(3UL, state.InUse);
            byte[] area = state.ToArea(own, xcr0, "kvm");
            Assert.Equal(3UL, BinaryPrimitives.ReadUInt64LittleEndian(area.AsSpan(512)));
            Assert.Equal(0x11, area[160]);                                            // xmm0 came over
            Assert.Equal(0xffffu, BinaryPrimitives.ReadUInt32LittleEndian(area.AsSpan(28))); // MXCSR_MASK stayed
            Assert.Equal(0x1f80u, BinaryPrimitives.ReadUInt32LittleEndian(area.AsSpan(24)));
        }
    }

    [Fact]
    public void A_component_moves_to_the_receivers_offset()
    {
        var (offset, size) = XsaveLayout.HostLayout(Avx);
        if (size != 256) return; // a host without AVX has nowhere to put it (the refusal test covers that case)
        var (own, xcr0) = Receiver();
        var state = FpuState.Parse(Serialized(xstateBv: 0x7, hi16Fill: 0, avxFill: 0xa5));
        byte[] area = state.ToArea(own, xcr0, "ptrace");
        Assert.Equal(7UL, BinaryPrimitives.ReadUInt64LittleEndian(area.AsSpan(512)));
        Assert.All(area.AsSpan(offset, 256).ToArray(), b => Assert.Equal(0xa5, b));
    }

    [Fact]
    public void A_state_round_trips_and_a_damaged_one_is_refused()
    {
        byte[] good = Serialized(0x7, 0, 1);
        Assert.Equal(good, FpuState.Parse(good).Serialize());

        byte[] compacted = (byte[])good.Clone();
        compacted[48 + 520 + 7] = 0x80; // XCOMP_BV bit 63
        Assert.Throws<InvalidDataException>(() => FpuState.Parse(compacted));
        byte[] outside = Serialized(0x100, 0); // XSTATE_BV names a component XCR0 lacks
        Assert.Throws<InvalidDataException>(() => FpuState.Parse(outside));
        byte[] overlong = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(overlong.AsSpan(40), 2048); // Hi16_ZMM past the area
        Assert.Throws<InvalidDataException>(() => FpuState.Parse(overlong));
        Assert.Throws<InvalidDataException>(() => FpuState.Parse(good.AsSpan(0, good.Length - 1)));
    }
}
