namespace Remus.Sandbox.Kernel;

/// <summary>
/// The calls about threads and CPUs: set/get_robust_list, sched_yield, sched_getaffinity/setaffinity (the vCPUs
/// offered: the host's cores as far as the platform runs vCPUs, <see cref="OfferedCpus"/>), getcpu, membarrier.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const int RobustListHeadSize = 24;

    /// <summary>membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) was called (a checkpoint carries it).</summary>
    private bool _membarrierRegistered;

    private long SysSetRobustList(ulong head, ulong len)
    {
        if (len != RobustListHeadSize) return -Errno.EINVAL;
        Current.RobustList = head;
        Current.RobustListLength = len;
        return 0;
    }

    private long SysGetRobustList(int tid, ulong headOut, ulong lenOut)
    {
        var t = tid == 0 ? Current : FindTask(tid);
        if (t == null) return -Errno.ESRCH;
        Memory.WriteU64(headOut, t.RobustList);
        Memory.WriteU64(lenOut, RobustListHeadSize);
        return 0;
    }

    /// <summary>sched_yield: the kernel lock goes to whoever waits for it, and the host thread yields its core.</summary>
    private long SysSchedYield()
    {
        using (Unlocked()) Thread.Yield();
        return 0;
    }

    private bool IsOwnPid(int pid) => pid == 0 || pid == Pid || FindTask(pid) != null;

    private long SysSchedGetAffinity(int pid, ulong len, ulong mask)
    {
        if (!IsOwnPid(pid)) return -Errno.ESRCH;
        if (len < 8 || (len & 7) != 0) return -Errno.EINVAL;
        int n = Math.Min(OfferedCpus, 64);
        Memory.WriteU64(mask, n == 64 ? ulong.MaxValue : (1UL << n) - 1);
        return 8;
    }

    /// <summary>sched_setaffinity: accepted (every thread has a vCPU of its own; the host schedules them).</summary>
    private long SysSchedSetAffinity(int pid, ulong len)
    {
        if (!IsOwnPid(pid)) return -Errno.ESRCH;
        return len == 0 ? -Errno.EINVAL : 0;
    }

    private long SysGetCpu(ulong cpu, ulong node)
    {
        if (cpu != 0) Memory.WriteU32(cpu, (uint)((Current.Tid - 1) % OfferedCpus));
        if (node != 0) Memory.WriteU32(node, 0);
        return 0;
    }

    private const int MEMBARRIER_CMD_QUERY = 0, MEMBARRIER_CMD_GLOBAL = 1, MEMBARRIER_CMD_PRIVATE_EXPEDITED = 8,
        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED = 16;

    /// <summary>
    /// membarrier: QUERY, GLOBAL, and the PRIVATE_EXPEDITED pair the runtimes use. Every other thread's vCPU is
    /// kicked: each passes through a host context switch (a full barrier) before it runs guest code again.
    /// </summary>
    private long SysMembarrier(int cmd, uint flags)
    {
        if (flags != 0) return -Errno.EINVAL;
        switch (cmd)
        {
            case MEMBARRIER_CMD_QUERY:
                return MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
            case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED:
                _membarrierRegistered = true;
                return 0;
            case MEMBARRIER_CMD_PRIVATE_EXPEDITED when !_membarrierRegistered:
                return -Errno.EPERM;
            case MEMBARRIER_CMD_GLOBAL or MEMBARRIER_CMD_PRIVATE_EXPEDITED:
                Interlocked.MemoryBarrier();
                var self = t_current;
                foreach (var t in _taskSnapshot) if (!t.Exited && t != self) t.Vcpu?.Kick();
                return 0;
            default:
                return -Errno.EINVAL;
        }
    }
}
