using Remus.Sandbox.Memory;
using System.Text;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>exit_group, uname, arch_prctl, sysinfo and the id calls (threads: Clone.cs, Threads.cs).</summary>
internal sealed partial class SandboxKernel
{
    private long SysExit(int status)
    {
        Exit(status & 0xFF);
        throw new ExitException();
    }

    private long SysUname(ulong buf)
    {
        Span<byte> u = stackalloc byte[65 * 6];
        u.Clear();
        string[] fields = ["Linux", "remus", "6.1.0-remus", "#1 SMP remus", "x86_64", "(none)"];
        for (int i = 0; i < fields.Length; i++) Encoding.ASCII.GetBytes(fields[i]).CopyTo(u[(i * 65)..]);
        Memory.Write(buf, u);
        return 0;
    }

    private const int ARCH_SET_GS = 0x1001, ARCH_SET_FS = 0x1002, ARCH_GET_FS = 0x1003, ARCH_GET_GS = 0x1004;

    private long SysArchPrctl(ref UserRegs r, int code, ulong addr)
    {
        switch (code)
        {
            case ARCH_SET_FS:
                if (addr >= 1UL << 47) return -Errno.EPERM;
                r.FsBase = addr;
                return 0;
            case ARCH_SET_GS:
                if (addr >= 1UL << 47) return -Errno.EPERM;
                r.GsBase = addr;
                return 0;
            case ARCH_GET_FS:
                Memory.WriteU64(addr, r.FsBase);
                return 0;
            case ARCH_GET_GS:
                Memory.WriteU64(addr, r.GsBase);
                return 0;
            default:
                return -Errno.EINVAL;
        }
    }

    private long SysSysinfo(ulong buf)
    {
        Span<byte> s = stackalloc byte[112];
        s.Clear();
        ulong free = Mm.Paged ? Mm.Frames!.Free * AddressSpace.PageSize
            : Mm.StackBottom - Mm.Brk - (ulong)Mm.Mappings.Sum(m => (long)(m.End - m.Start));
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(s, (GuestClock.HostMonotonicNs - _startNs) / NsPerSec);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[32..], Memory.Size);  // totalram
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s[40..], free);         // freeram
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(s[80..], 1);            // procs
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s[104..], 1);           // mem_unit
        Memory.Write(buf, s);
        return 0;
    }

}
