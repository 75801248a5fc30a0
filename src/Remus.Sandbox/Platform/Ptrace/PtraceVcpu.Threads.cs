namespace Remus.Sandbox.Platform.Ptrace;

/// <summary>
/// Guest threads on the ptrace platform (as gVisor's subprocess.newThread): each is a thread of the same stub
/// process, made by a clone(CLONE_VM|CLONE_THREAD|...) injected into an existing stub thread, and traced by its own
/// VMM host thread (ptrace requests must come from the tracer). The new stub thread needs no stack of its own: the
/// clone returns into the stub's pause loop (<c>mov eax, 34; syscall; jmp</c>), which never touches memory, so it
/// shares the stub's stack pointer harmlessly until its tracer loads the guest's registers. It is not traced until
/// its own host thread seizes it (PTRACE_O_TRACECLONE is off, and no CLONE_PTRACE). All threads share the stub's
/// one address space, so mappings, permissions and the dirty log apply once for all of them.
/// </summary>
internal sealed unsafe partial class PtraceVcpu
{
    private const ulong CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
        CLONE_THREAD = 0x10000, CLONE_SYSVSEM = 0x40000;

    /// <summary>Threads of one stub: the host kernel's limit is far higher; this bounds a runaway program.</summary>
    public int MaxVcpus => 512;

    /// <summary>A sibling: traces stub thread <paramref name="tid"/> from the calling (new) host thread.</summary>
    private PtraceVcpu(StubProcess stub, GuestMemory memory, int tid, in UserRegs regs, byte[] xstate)
    {
        _stub = stub;
        _memory = memory;
        _pid = tid;
        try
        {
            Check(Libc.ptrace(Libc.PTRACE_SEIZE, _pid, 0, (nint)(Libc.PTRACE_O_EXITKILL | Libc.PTRACE_O_TRACESYSGOOD)), "PTRACE_SEIZE");
            Check(Libc.ptrace(Libc.PTRACE_INTERRUPT, _pid, 0, 0), "PTRACE_INTERRUPT");
            WaitStop();
            GetRegs(ref _stubRegs);
            WriteXstate(xstate);
            _regs = regs;
            _regsDirty = true;
        }
        catch
        {
            ExitThread();
            throw;
        }
    }

    public IVcpuSeed PrepareSibling()
    {
        if (_dead) throw new InvalidOperationException("the vCPU process is gone");
        byte[] xstate = ReadXstate();
        UserRegs regs = _regs;
        _stub.MultiThreaded = true; // from here no region is unmapped (see RetireColdRegions)
        long tid = Inject(56, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM); // clone
        if (tid <= 0) throw new SandboxException($"cannot create a thread in the vCPU process: {Libc.ErrnoText((int)-tid)}");
        return new Seed(_stub, _memory, (int)tid, regs, xstate);
    }

    /// <summary>Ends this vCPU's stub thread (a sibling's): an injected exit(0), then its exit status is reaped.</summary>
    private void ExitThread()
    {
        if (_dead) return;
        _dead = true;
        UserRegs r = _stubRegs;
        r.Rip = StubProgram.SyscallInstruction;
        r.Rax = 60; // exit: this thread only
        r.Rdi = 0;
        r.OrigRax = ulong.MaxValue;
        if (Libc.ptrace(Libc.PTRACE_SETREGS, _pid, 0, (nint)(&r)) < 0) return;
        if (Libc.ptrace(Libc.PTRACE_CONT, _pid, 0, 0) < 0) return;
        int st;
        while (true)
        {
            int rc = Libc.waitpid(_pid, &st, Libc.WALL);
            if (rc < 0 && Libc.Errno == 4) continue; // EINTR
            if (rc < 0 || (st & 0xff) != 0x7f) return; // gone (or already reaped)
            if (Libc.ptrace(Libc.PTRACE_CONT, _pid, 0, 0) < 0) return; // a stop on the way (a late kick): go on
        }
    }

    private sealed class Seed(StubProcess stub, GuestMemory memory, int tid, UserRegs regs, byte[] xstate) : IVcpuSeed
    {
        private bool _used;

        public IVcpu Attach()
        {
            if (_used) throw new InvalidOperationException("a vCPU seed attaches once");
            _used = true;
            return new PtraceVcpu(stub, memory, tid, regs, xstate);
        }

        /// <summary>A seed never attached still owns a stub thread: it is traced here only to end it.</summary>
        public void Dispose()
        {
            if (_used) return;
            try
            {
                Attach().Dispose();
            }
            catch (SandboxException)
            {
                // the stub is gone: nothing left to end
            }
        }
    }
}
