using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Signals;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The x86-64 signal frame exactly as Linux lays it out (arch/x86/kernel/signal.c, signal_64.c, fpu/signal.c;
/// uapi asm/sigcontext.h, asm/ucontext.h), so that rt_sigreturn, unwinders and programs reading their ucontext work:
/// <code>
///   frame+0    pretcode (sa_restorer: the handler returns into it, it calls rt_sigreturn)
///   frame+8    struct ucontext: uc_flags, uc_link, uc_stack (24), uc_mcontext (struct sigcontext, 256), uc_sigmask
///   frame+312  siginfo (128)
///   fpstate    the XSAVE area (64-aligned, above the frame), its sw_reserved bytes describing it, FP_XSTATE_MAGIC2 after it
/// </code>
/// The frame goes 128 bytes (the red zone) below rsp, or at the top of the alternate stack for SA_ONSTACK;
/// rsp ends 8 below a 16-byte boundary, as after a call.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int FrameSize = 440, UcOffset = 8, InfoOffset = 312;
    private const int UcStack = 16, UcMcontext = 40, UcSigmask = 296, UcSize = 304;
    // struct sigcontext (64-bit), offsets within uc_mcontext.
    private const int ScR8 = 0, ScRdi = 64, ScRsi = 72, ScRbp = 80, ScRbx = 88, ScRdx = 96, ScRax = 104, ScRcx = 112,
        ScRsp = 120, ScRip = 128, ScEflags = 136, ScCs = 144, ScSs = 150, ScErr = 152, ScTrapno = 160, ScOldmask = 168,
        ScCr2 = 176, ScFpstate = 184;
    private const ulong UC_FP_XSTATE = 1, UC_SIGCONTEXT_SS = 2, UC_STRICT_RESTORE_SS = 4;
    private const uint FP_XSTATE_MAGIC1 = 0x46505853, FP_XSTATE_MAGIC2 = 0x46505845;
    /// <summary>The flags rt_sigreturn takes from the frame (Linux's FIX_EFLAGS): AC OF DF TF SF ZF AF PF CF RF.</summary>
    private const ulong FixEflags = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
    private const ulong EflagsDf = 0x400, EflagsTf = 0x100, EflagsRf = 0x10000;

    /// <summary>Pushes the frame for <paramref name="sig"/> and points the registers at its handler. False: the frame
    /// could not be written (bad stack, no restorer, alternate stack overflow); the caller forces SIGSEGV.</summary>
    private bool SetupFrame(ref UserRegs r, int sig, in SigInfo info)
    {
        ulong flags = Signals.Flags(sig);
        if ((flags & SignalState.SA_RESTORER) == 0) return false; // x86-64 has no other way back
        IVcpu vcpu = Vcpu ?? throw new InvalidOperationException("no vCPU");
        ulong sp = r.Rsp;
        bool onAltStack = Task.OnAltStack(sp);
        sp -= 128;
        if ((flags & SignalState.SA_ONSTACK) != 0 && Task.AltStackFlags(sp) == 0) sp = Task.AltSp + Task.AltSize;
        byte[] full = vcpu.GetXstate();
        _xstateSize = full.Length;
        _mxcsrMask = BinaryPrimitives.ReadUInt32LittleEndian(full.AsSpan(XsaveLayout.MxcsrMaskOffset));
        // The frame holds the components Linux puts in a frame for a process that never asked for AMX tile data
        // (fpstate->user_size: the dynamic XTILEDATA left out). The vCPU's own area may hold it: on a host with AMX,
        // ptrace's regset is 11 KiB, and a frame that size overflowed an 8 KiB sigaltstack (SIGSTKSZ: Rust's stack
        // overflow handler) where Linux's own frame of under 3 KiB fits.
        ulong features = vcpu.XstateFeatures & ~XsaveLayout.XtileDataMask;
        int frameXstate = Math.Clamp(XsaveLayout.UserSize(features), XsaveLayout.MinSize, full.Length);
        Span<byte> xstate = full.AsSpan(0, frameXstate);
        ulong fpstate = (sp - (ulong)(xstate.Length + 4)) & ~63UL;
        ulong frame = ((fpstate - FrameSize) & ~15UL) - 8;
        if (onAltStack && !Task.OnAltStack(frame)) return false;

        // The extended state: the area as XSAVE leaves it, described by its software-reserved bytes.
        Span<byte> sw = xstate.Slice(XsaveLayout.SwReservedOffset, XsaveLayout.LegacySize - XsaveLayout.SwReservedOffset);
        sw.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(sw, FP_XSTATE_MAGIC1);
        BinaryPrimitives.WriteUInt32LittleEndian(sw[4..], (uint)xstate.Length + 4);
        BinaryPrimitives.WriteUInt64LittleEndian(sw[8..], features);
        BinaryPrimitives.WriteUInt32LittleEndian(sw[16..], (uint)xstate.Length);
        ulong bv = BinaryPrimitives.ReadUInt64LittleEndian(xstate[XsaveLayout.HeaderOffset..]);
        BinaryPrimitives.WriteUInt64LittleEndian(xstate[XsaveLayout.HeaderOffset..], (bv & features) | XsaveLayout.FpSse);

        ulong oldMask = Task.SavedMask ?? Task.Blocked;
        Span<byte> f = stackalloc byte[FrameSize];
        f.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(f, Signals.Restorer(sig));
        Span<byte> uc = f.Slice(UcOffset, UcSize);
        BinaryPrimitives.WriteUInt64LittleEndian(uc, UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
        BinaryPrimitives.WriteUInt64LittleEndian(uc[UcStack..], Task.AltSp);
        BinaryPrimitives.WriteInt32LittleEndian(uc[(UcStack + 8)..], Task.AltStackFlags(r.Rsp) | (int)(Task.AltFlags & TaskSignals.SS_AUTODISARM));
        BinaryPrimitives.WriteUInt64LittleEndian(uc[(UcStack + 16)..], Task.AltSize);
        WriteSigcontext(uc.Slice(UcMcontext, 256), in r, fpstate, oldMask);
        BinaryPrimitives.WriteUInt64LittleEndian(uc[UcSigmask..], oldMask);
        if ((flags & SignalState.SA_SIGINFO) != 0) info.WriteTo(f[InfoOffset..]);
        try
        {
            Memory.Write(fpstate, xstate);
            Memory.WriteU32(fpstate + (ulong)xstate.Length, FP_XSTATE_MAGIC2);
            Memory.Write(frame, f);
        }
        catch (GuestFaultException)
        {
            return false;
        }

        // The handler starts with the FPU in its initial state, as on Linux (fpu__clear_user_states).
        vcpu.SetXstate(InitialXstate(full.Length));
        if ((Task.AltFlags & TaskSignals.SS_AUTODISARM) != 0) Task.DisarmAltStack();
        Task.SavedMask = null;
        r.Rdi = (ulong)sig;
        r.Rax = 0;
        r.Rsi = frame + InfoOffset;
        r.Rdx = frame + UcOffset;
        r.Rip = Signals.Handler(sig);
        r.Rsp = frame;
        r.Eflags &= ~(EflagsDf | EflagsRf | EflagsTf);
        r.OrigRax = ulong.MaxValue;
        ulong add = Signals.Mask(sig) | ((flags & SignalState.SA_NODEFER) == 0 ? PendingSignals.Bit(sig) : 0);
        Task.Blocked |= add & ~Unblockable;
        if ((flags & SignalState.SA_RESETHAND) != 0) Signals.SetHandler(sig, SIG_DFL);
        return true;
    }

    private void WriteSigcontext(Span<byte> sc, in UserRegs r, ulong fpstate, ulong oldMask)
    {
        ReadOnlySpan<ulong> high = [r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15];
        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteUInt64LittleEndian(sc[(ScR8 + 8 * i)..], high[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRdi..], r.Rdi);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRsi..], r.Rsi);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRbp..], r.Rbp);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRbx..], r.Rbx);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRdx..], r.Rdx);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRax..], r.Rax);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRcx..], r.Rcx);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRsp..], r.Rsp);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScRip..], r.Rip);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScEflags..], r.Eflags);
        BinaryPrimitives.WriteUInt16LittleEndian(sc[ScCs..], (ushort)r.Cs);
        BinaryPrimitives.WriteUInt16LittleEndian(sc[ScSs..], (ushort)r.Ss);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScErr..], Task.ErrorCode);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScTrapno..], Task.Trapno);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScOldmask..], oldMask);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScCr2..], Task.Cr2);
        BinaryPrimitives.WriteUInt64LittleEndian(sc[ScFpstate..], fpstate);
    }

    /// <summary>The FPU's initial state (FNINIT control word, default MXCSR, every component in its init state).</summary>
    private static byte[] InitialXstate(int size)
    {
        var area = new byte[size];
        BinaryPrimitives.WriteUInt16LittleEndian(area, 0x37F);
        BinaryPrimitives.WriteUInt32LittleEndian(area.AsSpan(XsaveLayout.MxcsrOffset), 0x1F80);
        return area;
    }

    /// <summary>
    /// rt_sigreturn: the registers, mask, alternate stack and extended state come back from the frame the handler
    /// returned over (at rsp - 8, the restorer's return address being popped). A frame that cannot be read is SIGSEGV.
    /// The result is the restored rax; no restart follows (orig_rax is -1).
    /// </summary>
    private long SysRtSigreturn(ref UserRegs r)
    {
        ulong frame = r.Rsp - 8;
        IVcpu vcpu = Vcpu ?? throw new InvalidOperationException("no vCPU");
        Span<byte> uc = stackalloc byte[UcSize];
        byte[] xstate;
        try
        {
            CopyFromGuest(frame + UcOffset, uc);
            xstate = ReadXstate(vcpu, BinaryPrimitives.ReadUInt64LittleEndian(uc[(UcMcontext + ScFpstate)..]));
        }
        catch (GuestFaultException)
        {
            ForceSigsegv(0);
            return (long)r.Rax;
        }
        Task.Blocked = BinaryPrimitives.ReadUInt64LittleEndian(uc[UcSigmask..]) & ~Unblockable;
        ReadOnlySpan<byte> sc = uc.Slice(UcMcontext, 256);
        r.R8 = U64(sc, ScR8); r.R9 = U64(sc, ScR8 + 8); r.R10 = U64(sc, ScR8 + 16); r.R11 = U64(sc, ScR8 + 24);
        r.R12 = U64(sc, ScR8 + 32); r.R13 = U64(sc, ScR8 + 40); r.R14 = U64(sc, ScR8 + 48); r.R15 = U64(sc, ScR8 + 56);
        r.Rdi = U64(sc, ScRdi); r.Rsi = U64(sc, ScRsi); r.Rbp = U64(sc, ScRbp); r.Rbx = U64(sc, ScRbx);
        r.Rdx = U64(sc, ScRdx); r.Rax = U64(sc, ScRax); r.Rcx = U64(sc, ScRcx);
        r.Rsp = U64(sc, ScRsp); r.Rip = U64(sc, ScRip);
        r.Eflags = (r.Eflags & ~FixEflags) | (U64(sc, ScEflags) & FixEflags);
        r.OrigRax = ulong.MaxValue;
        vcpu.SetXstate(xstate);
        // The alternate stack as the frame says (refused, as Linux does silently, while on it).
        SetAltStack(U64(uc, UcStack), BinaryPrimitives.ReadUInt32LittleEndian(uc[(UcStack + 8)..]), U64(uc, UcStack + 16), r.Rsp);
        _restartBlock = null;
        return (long)r.Rax;
    }

    /// <summary>The size of the vCPU's XSAVE area and its MXCSR mask (fixed for a vCPU's CPU; 0 until first read).</summary>
    private int _xstateSize;
    private uint _mxcsrMask;

    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);

    /// <summary>
    /// The extended state to load from a frame's fpstate, as Linux's __fpu_restore_sig: with both magics in place the
    /// XSAVE area (components outside the frame's xfeatures back to their initial state); without them only the
    /// legacy FXSAVE part; no fpstate at all: the initial state.
    /// </summary>
    private byte[] ReadXstate(IVcpu vcpu, ulong fpstate)
    {
        if (_xstateSize == 0)
        {
            byte[] current = vcpu.GetXstate();
            _xstateSize = current.Length;
            _mxcsrMask = BinaryPrimitives.ReadUInt32LittleEndian(current.AsSpan(XsaveLayout.MxcsrMaskOffset));
        }
        int size = _xstateSize;
        if (fpstate == 0) return InitialXstate(size);
        var area = new byte[size];
        CopyFromGuest(fpstate, area.AsSpan(0, XsaveLayout.LegacySize));
        ReadOnlySpan<byte> sw = area.AsSpan(XsaveLayout.SwReservedOffset);
        uint xsize = BinaryPrimitives.ReadUInt32LittleEndian(sw[16..]);
        ulong features = XsaveLayout.FpSse;
        if (BinaryPrimitives.ReadUInt32LittleEndian(sw) == FP_XSTATE_MAGIC1 && xsize >= XsaveLayout.MinSize && xsize <= size
            && xsize <= BinaryPrimitives.ReadUInt32LittleEndian(sw[4..]) && Memory.ReadU32(fpstate + xsize) == FP_XSTATE_MAGIC2)
        {
            CopyFromGuest(fpstate + XsaveLayout.LegacySize, area.AsSpan(XsaveLayout.LegacySize, (int)xsize - XsaveLayout.LegacySize));
            features = BinaryPrimitives.ReadUInt64LittleEndian(sw[8..]) & vcpu.XstateFeatures;
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(area.AsSpan(XsaveLayout.HeaderOffset), XsaveLayout.FpSse);
        }
        XsaveLayout.Sanitize(area, features | XsaveLayout.FpSse, _mxcsrMask);
        return area;
    }
}
