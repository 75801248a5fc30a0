using System.Buffers.Binary;

namespace Remus.Sandbox.Kernel.Signals;

/// <summary>
/// One signal as the program is told about it: Linux's 128-byte <c>siginfo_t</c> (include/uapi/asm-generic/siginfo.h)
/// reduced to what its union holds here: si_signo, si_errno, si_code, then at offset 16 two ints (pid/uid for kill,
/// timerid/overrun for timers) or the fault address, and at 24 a pointer-sized value (sigval).
/// </summary>
internal readonly record struct SigInfo(int Signo, int Code, ulong Word16 = 0, ulong Word24 = 0, int Errno = 0)
{
    public const int Size = 128;

    // si_code values (asm-generic/siginfo.h).
    public const int SI_USER = 0, SI_KERNEL = 0x80, SI_QUEUE = -1, SI_TIMER = -2, SI_TKILL = -6;
    public const int SEGV_MAPERR = 1, SEGV_ACCERR = 2;

    /// <summary>kill/tkill/tgkill from <paramref name="pid"/> (SI_USER or SI_TKILL): si_pid, si_uid.</summary>
    public static SigInfo FromProcess(int sig, int code, int pid, uint uid) => new(sig, code, (uint)pid | ((ulong)uid << 32));

    /// <summary>A fault: si_addr.</summary>
    public static SigInfo Fault(int sig, int code, ulong addr) => new(sig, code, addr);

    /// <summary>A POSIX timer's expiry: si_timerid, si_overrun, si_value.</summary>
    public static SigInfo Timer(int sig, int timerId, int overrun, ulong value) =>
        new(sig, SI_TIMER, (uint)timerId | ((ulong)(uint)overrun << 32), value);

    /// <summary>The kernel's own signal (SI_KERNEL), as for SIGALRM from an itimer or a forced SIGSEGV.</summary>
    public static SigInfo Kernel(int sig) => new(sig, SI_KERNEL);

    public SigInfo WithOverrun(int overrun) => this with { Word16 = (Word16 & 0xFFFF_FFFF) | ((ulong)(uint)overrun << 32) };

    public void WriteTo(Span<byte> buffer)
    {
        buffer[..Size].Clear();
        BinaryPrimitives.WriteInt32LittleEndian(buffer, Signo);
        BinaryPrimitives.WriteInt32LittleEndian(buffer[4..], Errno);
        BinaryPrimitives.WriteInt32LittleEndian(buffer[8..], Code);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[16..], Word16);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[24..], Word24);
    }

    public static SigInfo ReadFrom(ReadOnlySpan<byte> buffer) => new(
        BinaryPrimitives.ReadInt32LittleEndian(buffer),
        BinaryPrimitives.ReadInt32LittleEndian(buffer[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(buffer[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(buffer[24..]),
        BinaryPrimitives.ReadInt32LittleEndian(buffer[4..]));

    public void Save(BinaryWriter w)
    {
        w.Write(Signo); w.Write(Code); w.Write(Word16); w.Write(Word24); w.Write(Errno);
    }

    public static SigInfo Load(BinaryReader r) => new(r.ReadInt32(), r.ReadInt32(), r.ReadUInt64(), r.ReadUInt64(), r.ReadInt32());
}
