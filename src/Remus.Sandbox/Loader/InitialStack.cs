using System.Text;
using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Loader;

internal readonly record struct AuxInfo(ulong Phdr, ulong PhdrCount, ulong Entry);

/// <summary>
/// The stack a Linux program starts with (System V x86-64 ABI §3.4.1): argc, argv[], NULL, envp[], NULL, auxv pairs,
/// then the strings and AT_RANDOM bytes above them, rsp 16-byte aligned at argc. No vDSO is offered (no
/// AT_SYSINFO_EHDR), so libc makes real system calls for the clock, which the kernel layer serves.
/// </summary>
internal static class InitialStack
{
    private const ulong AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8,
        AT_ENTRY = 9, AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_PLATFORM = 15, AT_HWCAP = 16,
        AT_CLKTCK = 17, AT_SECURE = 23, AT_RANDOM = 25, AT_HWCAP2 = 26, AT_EXECFN = 31;

    public static ulong Build(AddressSpace mm, DomainSpec spec, AuxInfo aux, ReadOnlySpan<byte> random)
    {
        ulong sp = mm.StackTop;

        ulong PushBytes(ReadOnlySpan<byte> data)
        {
            sp -= (ulong)data.Length;
            mm.KernelWrite(sp, data);
            return sp;
        }
        ulong PushString(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s + "\0");
            return PushBytes(bytes);
        }

        string argv0 = spec.Argv0 ?? spec.ProgramPath;
        ulong execfn = PushString(argv0);
        ulong platform = PushString("x86_64");
        var envPtrs = new List<ulong>();
        foreach (var (k, v) in spec.Env) envPtrs.Add(PushString($"{k}={v}"));
        var argPtrs = new List<ulong> { PushString(argv0) };
        foreach (var a in spec.Args) argPtrs.Add(PushString(a));
        sp &= ~15UL;
        ulong rnd = PushBytes(random[..16]);
        sp &= ~15UL;

        var auxv = new List<(ulong, ulong)>
        {
            (AT_PHDR, aux.Phdr), (AT_PHENT, 56), (AT_PHNUM, aux.PhdrCount), (AT_PAGESZ, AddressSpace.PageSize),
            (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, aux.Entry), (AT_UID, 0), (AT_EUID, 0), (AT_GID, 0), (AT_EGID, 0),
            (AT_PLATFORM, platform), (AT_HWCAP, CpuFeatures.Hwcap), (AT_CLKTCK, 100), (AT_SECURE, 0),
            (AT_RANDOM, rnd), (AT_HWCAP2, 0), (AT_EXECFN, execfn), (AT_NULL, 0),
        };
        int words = 1 + argPtrs.Count + 1 + envPtrs.Count + 1 + auxv.Count * 2;
        if ((ulong)words * 8 + (mm.StackTop - sp) > mm.StackSize / 2)
            throw new SandboxException("the program's arguments and environment are too large for its stack");
        sp -= (ulong)words * 8;
        sp &= ~15UL;
        ulong p = sp;
        Span<byte> word = stackalloc byte[8];
        void Put(ulong v, Span<byte> w) { System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(w, v); mm.KernelWrite(p, w); p += 8; }
        Put((ulong)argPtrs.Count, word);
        foreach (var a in argPtrs) Put(a, word);
        Put(0, word);
        foreach (var e in envPtrs) Put(e, word);
        Put(0, word);
        foreach (var (k, v) in auxv) { Put(k, word); Put(v, word); }
        return sp;
    }
}
