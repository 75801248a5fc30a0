namespace Remus.Sandbox.Kernel;

/// <summary>
/// prlimit64, getrlimit, setrlimit, getrusage, times. Limits are kept (and checkpointed) in <see cref="Limits"/>;
/// enforced: RLIMIT_NOFILE on every fd allocation, RLIMIT_AS on mmap, mremap and brk. The rest are recorded only.
/// CPU time is reported as user time (the platform counts no split).
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int RUSAGE_SELF = 0, RUSAGE_THREAD = 1, RUSAGE_CHILDREN = -1;
    private const long ClockTicksPerSec = 100; // USER_HZ

    private long SysPrlimit(int pid, int resource, ulong newLimit, ulong oldLimit)
    {
        if (pid != 0 && pid != Pid) return -Errno.ESRCH;
        if (resource < 0 || resource >= ResourceLimits.Count) return -Errno.EINVAL;
        ulong oldSoft = Limits.Soft(resource), oldHard = Limits.Hard(resource);
        if (newLimit != 0)
        {
            long r = Limits.Set(resource, Memory.ReadU64(newLimit), Memory.ReadU64(newLimit + 8));
            if (r < 0) return r;
            if (resource == ResourceLimits.RLIMIT_NOFILE) ApplyFdLimit();
        }
        if (oldLimit != 0)
        {
            Memory.WriteU64(oldLimit, oldSoft);
            Memory.WriteU64(oldLimit + 8, oldHard);
        }
        return 0;
    }

    /// <summary>New fds are handed out below RLIMIT_NOFILE's soft limit (fds already open above it stay, as on Linux).</summary>
    private void ApplyFdLimit() => Fds.Limit = (int)Math.Min(Limits.Soft(ResourceLimits.RLIMIT_NOFILE), Files.FdTable.MaxFds);

    private long SysGetRusage(int who, ulong usage)
    {
        if (who is not (RUSAGE_SELF or RUSAGE_THREAD or RUSAGE_CHILDREN)) return -Errno.EINVAL;
        Span<byte> u = stackalloc byte[144]; // struct rusage: ru_utime, ru_stime, then 14 longs
        u.Clear();
        if (who != RUSAGE_CHILDREN) // no children: all zeros
        {
            long cpu = CpuNs;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(u, cpu / NsPerSec);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(u[8..], cpu % NsPerSec / 1000);
        }
        Memory.Write(usage, u);
        return 0;
    }

    private long SysTimes(ulong buf)
    {
        if (buf != 0)
        {
            Span<byte> t = stackalloc byte[32]; // struct tms: utime, stime, cutime, cstime in clock ticks
            t.Clear();
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(t, CpuNs / (NsPerSec / ClockTicksPerSec));
            Memory.Write(buf, t);
        }
        return Clock.MonotonicNs / (NsPerSec / ClockTicksPerSec); // ticks since an arbitrary point, as on Linux
    }
}
