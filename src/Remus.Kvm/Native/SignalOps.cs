namespace Remus.Kvm.Native;

/// <summary>The thread-signal operations behind <see cref="VcpuKicker"/>, pointer-free so they can be tested alone.</summary>
internal static unsafe class SignalOps
{
    /// <summary>The calling thread's pthread_t.</summary>
    public static nuint CurrentThread() => Libc.pthread_self();

    /// <summary>Blocks <paramref name="signal"/> in the calling thread's mask; returns the mask as it was before.</summary>
    public static SigSet BlockOnCurrentThread(int signal)
    {
        SigSet block = SigSet.Of(signal);
        SigSet old;
        int e = Libc.pthread_sigmask(Libc.SIG_BLOCK, &block, &old);
        if (e != 0) throw new KvmException("pthread_sigmask", e);
        return old;
    }

    /// <summary>The calling thread's current signal mask.</summary>
    public static SigSet CurrentMask()
    {
        SigSet current;
        int e = Libc.pthread_sigmask(Libc.SIG_BLOCK, null, &current);
        if (e != 0) throw new KvmException("pthread_sigmask", e);
        return current;
    }

    /// <summary>Replaces the calling thread's signal mask.</summary>
    public static void SetCurrentMask(SigSet mask)
    {
        int e = Libc.pthread_sigmask(Libc.SIG_SETMASK, &mask, null);
        if (e != 0) throw new KvmException("pthread_sigmask", e);
    }

    /// <summary>pthread_kill.</summary>
    public static void Send(nuint thread, int signal)
    {
        int e = Libc.pthread_kill(thread, signal);
        if (e != 0) throw new KvmException("pthread_kill", e);
    }

    /// <summary>Consumes every pending instance of <paramref name="signal"/> (which must be blocked) with a
    /// zero-timeout sigtimedwait; returns how many there were.</summary>
    public static int DrainPending(int signal)
    {
        SigSet set = SigSet.Of(signal);
        Timespec zero = default;
        int consumed = 0;
        while (true)
        {
            int r = Libc.sigtimedwait(&set, null, &zero);
            if (r == signal)
            {
                consumed++;
                continue;
            }
            int e = r < 0 ? Libc.Errno : 0;
            if (e == Libc.EINTR) continue;
            if (e == Libc.EAGAIN) return consumed;
            throw new KvmException("sigtimedwait", e);
        }
    }
}
