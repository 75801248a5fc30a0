using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel;

/// <summary>epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2 (fs/eventpoll.c).</summary>
internal sealed partial class SandboxKernel
{
    private const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    private const int EpollEventSize = 12; // struct epoll_event is packed on x86-64: u32 events, u64 data
    private const int EpMaxEvents = int.MaxValue / EpollEventSize;
    private const uint EpollExclusiveOkBits = (uint)(PollEvents.In | PollEvents.Out | PollEvents.Err | PollEvents.Hup)
        | EpollFile.EPOLLWAKEUP | EpollFile.EPOLLET | EpollFile.EPOLLEXCLUSIVE;

    private long SysEpollCreate1(int flags)
    {
        if ((flags & ~O_CLOEXEC) != 0) return -Errno.EINVAL;
        return Fds.Add(new EpollFile(Clock) { Flags = O_RDWR }, (flags & O_CLOEXEC) != 0);
    }

    private long SysEpollCtl(int epfd, int op, int fd, ulong eventAddr)
    {
        uint events = 0;
        ulong data = 0;
        if (op != EPOLL_CTL_DEL)
        {
            events = Memory.ReadU32(eventAddr);
            data = Memory.ReadU64(eventAddr + 4);
        }
        var ef = Fds.Get(epfd);
        var target = Fds.Get(fd);
        if (ef == null || target == null) return -Errno.EBADF;
        if (target.Queue == null) return -Errno.EPERM;     // no poll operation (regular files, /dev/null)
        events &= ~EpollFile.EPOLLWAKEUP;                    // without CAP_BLOCK_SUSPEND it is dropped
        if (ef == target || ef is not EpollFile ep) return -Errno.EINVAL;
        if (op != EPOLL_CTL_DEL && (events & EpollFile.EPOLLEXCLUSIVE) != 0)
        {
            if (op == EPOLL_CTL_MOD) return -Errno.EINVAL;
            if (op == EPOLL_CTL_ADD && (target is EpollFile || (events & ~EpollExclusiveOkBits) != 0)) return -Errno.EINVAL;
        }
        if (op == EPOLL_CTL_ADD && target is EpollFile inner && inner.Reaches(ep)) return -Errno.ELOOP;
        var item = ep.Find(target, fd);
        switch (op)
        {
            case EPOLL_CTL_ADD:
                if (item != null) return -Errno.EEXIST;
                ep.Add(target, fd, events, data);
                return 0;
            case EPOLL_CTL_DEL:
                if (item == null) return -Errno.ENOENT;
                ep.Forget(item);
                return 0;
            case EPOLL_CTL_MOD:
                if (item == null) return -Errno.ENOENT;
                if ((item.Events & EpollFile.EPOLLEXCLUSIVE) != 0) return -Errno.EINVAL; // added exclusive: fixed
                ep.Modify(item, events, data);
                return 0;
            default:
                return -Errno.EINVAL;
        }
    }

    private long SysEpollWait(int epfd, ulong events, int max, int timeoutMs) =>
        DoEpollWait(epfd, events, max, DeadlineIn(timeoutMs < 0 ? -1 : timeoutMs * 1_000_000L));

    private long SysEpollPWait(int epfd, ulong events, int max, int timeoutMs, ulong sigmask, ulong sigsetSize)
    {
        if (sigmask != 0 && sigsetSize != 8) return -Errno.EINVAL;
        return WithSignalMask(sigmask, () => SysEpollWait(epfd, events, max, timeoutMs));
    }

    private long SysEpollPWait2(int epfd, ulong events, int max, ulong tsp, ulong sigmask, ulong sigsetSize)
    {
        long timeout = -1;
        if (tsp != 0)
        {
            if (ReadTimespecNs(tsp) is not { } t) return -Errno.EINVAL;
            timeout = t;
        }
        if (sigmask != 0 && sigsetSize != 8) return -Errno.EINVAL;
        return WithSignalMask(sigmask, () => DoEpollWait(epfd, events, max, DeadlineIn(timeout)));
    }

    private long DoEpollWait(int epfd, ulong events, int max, long deadline)
    {
        if (max <= 0 || max > EpMaxEvents) return -Errno.EINVAL;
        if (!Memory.IsAccessible(events, (ulong)max * EpollEventSize, write: true)) return -Errno.EFAULT;
        var f = Fds.Get(epfd);
        if (f == null) return -Errno.EBADF;
        if (f is not EpollFile ep) return -Errno.EINVAL;
        using var w = new Waiter();
        w.Listen(ep.Queue, PollEvents.Readable);
        List<(uint Events, ulong Data)> got = [];
        long n = WaitForEvents(w, deadline, () =>
        {
            got = ep.Harvest(max);
            return got.Count;
        }, () => ep.NextEventNs, restartCode: Errno.EINTR); // ep_poll: EINTR, never restarted
        Span<byte> e = stackalloc byte[EpollEventSize];
        for (int i = 0; i < got.Count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(e, got[i].Events);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(e[4..], got[i].Data);
            Memory.Write(events + (ulong)i * EpollEventSize, e);
        }
        return n;
    }
}
