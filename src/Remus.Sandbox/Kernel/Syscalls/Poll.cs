using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// poll, ppoll, select, pselect6 (fs/select.c): every fd kind answers through its readiness; the call waits on the
/// queues of the files it watches, until one is ready, its timeout, or an interrupt (a pause restarts the call with the
/// deadline it had, which checkpoints carry; a signal ends it with EINTR, ERESTARTNOHAND as fs/select.c). ppoll and
/// pselect6 wait with their signal mask in place (SignalMaskDuringWait.cs). The remaining time is written back, as Linux does for ppoll, select and pselect6.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const PollEvents PollInSet = PollEvents.RdNorm | PollEvents.RdBand | PollEvents.In | PollEvents.Hup | PollEvents.Err;
    private const PollEvents PollOutSet = PollEvents.WrBand | PollEvents.WrNorm | PollEvents.Out | PollEvents.Err;
    private const PollEvents PollExSet = PollEvents.Pri;

    /// <summary>
    /// Calls <paramref name="check"/> until it finds something (non-zero) or the deadline (guest monotonic ns;
    /// long.MaxValue: none) passes, sleeping on <paramref name="w"/> in between and waking for timed readiness
    /// (<paramref name="nextEvent"/>). Interrupted: restarts the call later, its deadline kept.
    /// </summary>
    private long WaitForEvents(Waiter w, long deadline, Func<long> check, Func<long> nextEvent, long restartCode = ERESTARTNOHAND)
    {
        while (true)
        {
            w.Arm();
            long n = check();
            if (n != 0) return n;
            if (Clock.MonotonicNs >= deadline) return 0;
            bool goOn;
            try
            {
                goOn = SleepOn(w, Math.Min(deadline, nextEvent()), restartCode);
            }
            catch (SignalInterruptException) when (deadline != long.MaxValue)
            {
                _interruptedWait = (_callRip, deadline); // a stop's restart (no handler) keeps the deadline
                throw;
            }
            if (!goOn)
            {
                if (deadline != long.MaxValue) _interruptedWait = (_callRip, deadline);
                throw new RestartException();
            }
        }
    }

    /// <summary>The deadline of a wait of <paramref name="ns"/> (negative: none), or the restarted call's.</summary>
    private long DeadlineIn(long ns) => _restartedDeadline ?? (ns < 0 ? long.MaxValue : MonotonicDeadline(ns));

    /// <summary>Writes back the time left to a timespec (or timeval) timeout, unless it was zero (Linux leaves that).</summary>
    private void WriteRemaining(ulong addr, long deadline, bool zero, bool timeval)
    {
        if (addr == 0 || zero || deadline == long.MaxValue) return;
        long left = Math.Max(deadline - Clock.MonotonicNs, 0);
        Memory.WriteU64(addr, (ulong)(left / NsPerSec));
        Memory.WriteU64(addr + 8, (ulong)(timeval ? left % NsPerSec / 1000 : left % NsPerSec));
    }

    private long SysPoll(ulong fds, ulong nfds, int timeoutMs) =>
        DoPoll(fds, nfds, DeadlineIn(timeoutMs < 0 ? -1 : timeoutMs * 1_000_000L));

    private long SysPPoll(ulong fds, ulong nfds, ulong tsp, ulong sigmask, ulong sigsetSize)
    {
        long timeout = -1;
        if (tsp != 0)
        {
            if (ReadTimespecNs(tsp) is not { } t) return -Errno.EINVAL;
            timeout = t;
        }
        if (sigmask != 0 && sigsetSize != 8) return -Errno.EINVAL;
        long deadline = DeadlineIn(timeout);
        long r;
        try
        {
            r = WithSignalMask(sigmask, () => DoPoll(fds, nfds, deadline));
        }
        catch (SignalInterruptException)
        {
            WriteRemaining(tsp, deadline, timeout == 0, timeval: false);
            throw;
        }
        WriteRemaining(tsp, deadline, timeout == 0, timeval: false);
        return r;
    }

    private long DoPoll(ulong fdsAddr, ulong nfds, long deadline)
    {
        if (nfds > (ulong)Fds.Limit) return -Errno.EINVAL;
        int n = (int)nfds;
        byte[] raw = new byte[n * 8];
        if (n > 0) Memory.Read(fdsAddr, raw); // poll(NULL, 0, ms) is a sleep
        using var w = new Waiter();
        var files = new FileDescription?[n];
        for (int i = 0; i < n; i++)
        {
            int fd = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 8));
            files[i] = fd < 0 ? null : Fds.Get(fd);
            if (files[i]?.Queue is { } q) w.Listen(q, (PollEvents)BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(i * 8 + 4)));
        }
        long count = WaitForEvents(w, deadline, () =>
        {
            int ready = 0;
            for (int i = 0; i < n; i++)
            {
                var e = raw.AsSpan(i * 8);
                int fd = BinaryPrimitives.ReadInt32LittleEndian(e);
                var events = (PollEvents)BinaryPrimitives.ReadUInt16LittleEndian(e[4..]) | PollEvents.Err | PollEvents.Hup;
                PollEvents revents = fd < 0 ? PollEvents.None : files[i] is { } f ? f.Readiness() & events : PollEvents.Nval;
                BinaryPrimitives.WriteUInt16LittleEndian(e[6..], (ushort)revents);
                if (revents != PollEvents.None) ready++;
            }
            return ready;
        }, () => NextEvent(files));
        for (int i = 0; i < n; i++) Memory.Write(fdsAddr + (ulong)i * 8 + 6, raw.AsSpan(i * 8 + 6, 2));
        return count;
    }

    private static long NextEvent(IEnumerable<FileDescription?> files)
    {
        long next = long.MaxValue;
        foreach (var f in files) if (f != null) next = Math.Min(next, f.NextEventNs);
        return next;
    }

    private long SysSelect(int n, ulong inp, ulong outp, ulong exp, ulong tvp)
    {
        long timeout = -1;
        if (tvp != 0)
        {
            long sec = (long)Memory.ReadU64(tvp), usec = (long)Memory.ReadU64(tvp + 8);
            // Linux carries whole seconds out of tv_usec before checking (kern_select).
            sec += usec / 1_000_000;
            usec %= 1_000_000;
            if (sec < 0 || usec < 0) return -Errno.EINVAL;
            timeout = sec > long.MaxValue / NsPerSec - 1 ? long.MaxValue / 2 : sec * NsPerSec + usec * 1000;
        }
        long deadline = DeadlineIn(timeout);
        long r;
        try
        {
            r = DoSelect(n, inp, outp, exp, deadline);
        }
        catch (SignalInterruptException)
        {
            WriteRemaining(tvp, deadline, timeout == 0, timeval: true); // select(2) updates the timeout on EINTR too
            throw;
        }
        WriteRemaining(tvp, deadline, timeout == 0, timeval: true);
        return r;
    }

    private long SysPSelect6(int n, ulong inp, ulong outp, ulong exp, ulong tsp, ulong sig)
    {
        long timeout = -1;
        if (tsp != 0)
        {
            if (ReadTimespecNs(tsp) is not { } t) return -Errno.EINVAL;
            timeout = t;
        }
        ulong mask = 0;
        if (sig != 0)
        {
            ulong size = Memory.ReadU64(sig + 8);
            mask = Memory.ReadU64(sig);
            if (mask != 0 && size != 8) return -Errno.EINVAL;
        }
        long deadline = DeadlineIn(timeout);
        long r;
        try
        {
            r = WithSignalMask(mask, () => DoSelect(n, inp, outp, exp, deadline));
        }
        catch (SignalInterruptException)
        {
            WriteRemaining(tsp, deadline, timeout == 0, timeval: false);
            throw;
        }
        WriteRemaining(tsp, deadline, timeout == 0, timeval: false);
        return r;
    }

    private long DoSelect(int n, ulong inp, ulong outp, ulong exp, long deadline)
    {
        if (n < 0) return -Errno.EINVAL;
        n = Math.Min(n, FdTable.MaxFds);
        int words = (n + 63) / 64;
        ulong[] inSet = ReadFdSet(inp, words), outSet = ReadFdSet(outp, words), exSet = ReadFdSet(exp, words);
        var files = new FileDescription?[n];
        using var w = new Waiter();
        for (int fd = 0; fd < n; fd++)
        {
            var want = Bit(inSet, fd) ? PollInSet : PollEvents.None;
            if (Bit(outSet, fd)) want |= PollOutSet;
            if (Bit(exSet, fd)) want |= PollExSet;
            if (want == PollEvents.None) continue;
            files[fd] = Fds.Get(fd);
            if (files[fd] == null) return -Errno.EBADF;
            if (files[fd]!.Queue is { } q) w.Listen(q, want);
        }
        ulong[] rin = new ulong[words], rout = new ulong[words], rex = new ulong[words];
        long count = WaitForEvents(w, deadline, () =>
        {
            Array.Clear(rin);
            Array.Clear(rout);
            Array.Clear(rex);
            int ready = 0;
            for (int fd = 0; fd < n; fd++)
            {
                if (files[fd] is not { } f) continue;
                var mask = f.Readiness();
                if (Bit(inSet, fd) && (mask & PollInSet) != 0) { Set(rin, fd); ready++; }
                if (Bit(outSet, fd) && (mask & PollOutSet) != 0) { Set(rout, fd); ready++; }
                if (Bit(exSet, fd) && (mask & PollExSet) != 0) { Set(rex, fd); ready++; }
            }
            return ready;
        }, () => NextEvent(files));
        WriteFdSet(inp, rin);
        WriteFdSet(outp, rout);
        WriteFdSet(exp, rex);
        return count;

        static bool Bit(ulong[] set, int fd) => (set[fd >> 6] & (1UL << (fd & 63))) != 0;
        static void Set(ulong[] set, int fd) => set[fd >> 6] |= 1UL << (fd & 63);
    }

    private ulong[] ReadFdSet(ulong addr, int words)
    {
        var set = new ulong[words];
        if (addr != 0)
            for (int i = 0; i < words; i++) set[i] = Memory.ReadU64(addr + (ulong)i * 8);
        return set;
    }

    private void WriteFdSet(ulong addr, ulong[] set)
    {
        if (addr == 0) return;
        for (int i = 0; i < set.Length; i++) Memory.WriteU64(addr + (ulong)i * 8, set[i]);
    }
}
