using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox;
using Remus.Sandbox.Kernel;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// fcntl record locks and flock at the system-call level, where a test can hold write locks (the descriptions are
/// opened read-only from `files` and stand in for writable volume files: their access mode is set to O_RDWR) and
/// drive a blocked F_SETLKW through a pause and a checkpoint: OFD write locks of two descriptions conflict (EAGAIN,
/// F_OFD_GETLK reports the holder with l_pid -1) and conflict with the process's POSIX locks; closing any fd drops the
/// POSIX locks; a blocked F_OFD_SETLKW gives way to a pause, restarts, and is woken by another thread's unlock; the
/// locks and a blocked waiter survive a save and load into a new kernel, where the waiter completes once the holder
/// lets go.
/// </summary>
public sealed class LockSyscallTests : IDisposable
{
    private const ulong PathAddr = GuestMemory.UserBase, Fl = GuestMemory.UserBase + 1024, Rip = 0x401000;
    private const int F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7, F_OFD_GETLK = 36, F_OFD_SETLK = 37, F_OFD_SETLKW = 38;
    private const short RD = 0, WR = 1, UN = 2;
    private const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    private const long EAGAIN = 11, EBADF = 9, EINVAL = 22;

    private readonly GuestMemory _memory = new(4 << 20);
    private readonly string _dir = Directory.CreateTempSubdirectory("remus-locksys-").FullName;
    private readonly string _file;

    public LockSyscallTests()
    {
        _file = Path.Combine(_dir, "data");
        File.WriteAllBytes(_file, new byte[4096]);
    }

    private SandboxKernel NewKernel(bool map = true)
    {
        string self = typeof(LockSyscallTests).Assembly.Location;
        var spec = new DomainSpec { ProgramPath = self, MemoryMiB = 4 };
        var mm = new AddressSpace(_memory);
        if (map) mm.Map(PathAddr, PathAddr + 8192, 3);
        return new SandboxKernel(_memory, mm, spec, new RecordingConsole(), new FileAccessPolicy(self, [_file]));
    }

    private static (SyscallOutcome Outcome, long Result) Call(SandboxKernel k, long nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0)
    {
        var r = new UserRegs { OrigRax = (ulong)nr, Rdi = a0, Rsi = a1, Rdx = a2, Rip = Rip };
        SyscallOutcome outcome;
        lock (k.KernelLock) outcome = k.Dispatch(ref r); // as the vCPU loop serves a call
        return (outcome, (long)r.Rax);
    }

    private static long Ok(SandboxKernel k, long nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0)
    {
        var (outcome, result) = Call(k, nr, a0, a1, a2);
        Assert.Equal(SyscallOutcome.Return, outcome);
        return result;
    }

    /// <summary>Opens the file (read-only, as `files` allows) and makes the description stand in for a writable one.</summary>
    private int Open(SandboxKernel k)
    {
        _memory.Write(PathAddr, Encoding.UTF8.GetBytes(_file + "\0"));
        int fd = (int)Ok(k, 257, unchecked((ulong)-100), PathAddr, 0);
        Assert.True(fd >= 0, $"openat: {fd}");
        k.Fds.Get(fd)!.Flags |= 2; // O_RDWR
        return fd;
    }

    private void PutFlock(short type, long start, long len, short whence = 0, int pid = 0)
    {
        Span<byte> b = stackalloc byte[32];
        BinaryPrimitives.WriteInt16LittleEndian(b, type);
        BinaryPrimitives.WriteInt16LittleEndian(b[2..], whence);
        BinaryPrimitives.WriteInt64LittleEndian(b[8..], start);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], len);
        BinaryPrimitives.WriteInt32LittleEndian(b[24..], pid);
        _memory.Write(Fl, b);
    }

    private (SyscallOutcome Outcome, long Result) Lock(SandboxKernel k, int fd, int cmd, short type, long start, long len, int pid = 0)
    {
        PutFlock(type, start, len, pid: pid);
        return Call(k, 72, (ulong)fd, (ulong)cmd, Fl);
    }

    private long Set(SandboxKernel k, int fd, int cmd, short type, long start, long len)
    {
        var (outcome, result) = Lock(k, fd, cmd, type, start, len);
        Assert.Equal(SyscallOutcome.Return, outcome);
        return result;
    }

    /// <summary>F_GETLK / F_OFD_GETLK: what it reports (type, start, len, pid).</summary>
    private (short Type, long Start, long Len, int Pid) Get(SandboxKernel k, int fd, int cmd, short type, long start, long len)
    {
        Assert.Equal(0, Set(k, fd, cmd, type, start, len));
        var b = _memory.Span(Fl, 32);
        return (BinaryPrimitives.ReadInt16LittleEndian(b), BinaryPrimitives.ReadInt64LittleEndian(b[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(b[16..]), BinaryPrimitives.ReadInt32LittleEndian(b[24..]));
    }

    private static long Flock(SandboxKernel k, int fd, int op) => Ok(k, 73, (ulong)fd, (ulong)op);

    private static CancellationToken Interrupted()
    {
        var cts = new CancellationTokenSource();
        cts.Cancel();
        return cts.Token;
    }

    [Fact]
    public void Ofd_write_locks_of_two_descriptions_conflict_and_getlk_reports_the_holder()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k);
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, WR, 100, 50));
        Assert.Equal(-EAGAIN, Set(k, b, F_OFD_SETLK, WR, 120, 1));
        Assert.Equal(-EAGAIN, Set(k, b, F_OFD_SETLK, RD, 149, 10));
        Assert.Equal(0, Set(k, b, F_OFD_SETLK, WR, 150, 10)); // adjacent: no overlap
        Assert.Equal((WR, 100L, 50L, -1), Get(k, b, F_OFD_GETLK, RD, 0, 0));
        Assert.Equal((WR, 150L, 10L, -1), Get(k, a, F_OFD_GETLK, RD, 0, 0));
        // The process's POSIX locks conflict with OFD locks, even one set through the same description.
        Assert.Equal(-EAGAIN, Set(k, a, F_SETLK, RD, 0, 0));
        Assert.Equal((WR, 100L, 50L, -1), Get(k, a, F_GETLK, RD, 0, 0));
        // A description's own locks never conflict: converting and widening is fine.
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, RD, 90, 60));
        Assert.Equal((RD, 90L, 60L, -1), Get(k, b, F_OFD_GETLK, WR, 0, 0));
        Assert.Equal(-EINVAL, Lock(k, a, F_OFD_SETLK, WR, 0, 1, pid: 7).Result);
        k.Fds.Get(b)!.Flags &= ~3; // O_RDONLY
        Assert.Equal(-EBADF, Set(k, b, F_OFD_SETLK, WR, 0, 1));
        Assert.Equal(0, Set(k, b, F_OFD_SETLK, RD, 0, 1));
    }

    [Fact]
    public void Posix_locks_of_the_process_never_conflict_and_an_ofd_getlk_sees_them_with_the_pid()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k), c = Open(k);
        Assert.Equal(0, Set(k, a, F_SETLK, WR, 0, 10));
        Assert.Equal(0, Set(k, b, F_SETLK, WR, 5, 10)); // the same owner: merged into [0, 15)
        Assert.Equal(UN, Get(k, c, F_GETLK, WR, 0, 0).Type);
        Assert.Equal((WR, 0L, 15L, 1), Get(k, c, F_OFD_GETLK, RD, 0, 0)); // pid 1: the domain's process
        Assert.Equal(0, Set(k, a, F_SETLK, RD, 5, 5)); // split: WR [0,5), RD [5,10), WR [10,15)
        Assert.Equal((WR, 10L, 5L, 1), Get(k, c, F_OFD_GETLK, RD, 5, 0));
        Assert.Equal(0, Set(k, c, F_OFD_SETLK, RD, 5, 5));
        Assert.Equal(-EAGAIN, Set(k, c, F_OFD_SETLK, RD, 4, 1));
    }

    [Fact]
    public void Closing_any_fd_of_the_file_drops_the_process_posix_locks()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k), other = Open(k);
        Assert.Equal(0, Set(k, a, F_SETLK, WR, 0, 0));
        Assert.Equal(-EAGAIN, Set(k, other, F_OFD_SETLK, WR, 0, 1));
        Assert.Equal(0, Ok(k, 3, (ulong)b)); // close(b): another description of the same file
        Assert.Equal(0, Set(k, other, F_OFD_SETLK, WR, 0, 1));
    }

    [Fact]
    public void Ofd_locks_and_flocks_go_with_their_description_not_with_one_of_its_fds()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k);
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, WR, 0, 0));
        Assert.Equal(0, Flock(k, a, LOCK_EX));
        int dup = (int)Ok(k, 32, (ulong)a);
        Assert.Equal(0, Ok(k, 3, (ulong)a));
        Assert.Equal(-EAGAIN, Set(k, b, F_OFD_SETLK, RD, 0, 1));
        Assert.Equal(-EAGAIN, Flock(k, b, LOCK_SH | LOCK_NB));
        Assert.Equal(0, Ok(k, 3, (ulong)dup));
        Assert.Equal(0, Set(k, b, F_OFD_SETLK, WR, 0, 1));
        Assert.Equal(0, Flock(k, b, LOCK_EX | LOCK_NB));
    }

    [Fact]
    public void A_blocked_setlkw_gives_way_to_a_pause_and_another_threads_unlock_wakes_it()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k);
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, WR, 0, 0));
        k.Interrupt = Interrupted();
        Assert.Equal(SyscallOutcome.Restart, Lock(k, b, F_OFD_SETLKW, WR, 0, 0).Outcome);
        Assert.Equal(SyscallOutcome.Restart, Lock(k, b, F_SETLKW, RD, 0, 0).Outcome);
        k.Interrupt = CancellationToken.None;

        // Another thread blocks in F_OFD_SETLKW (its own struct flock, in the same memory) until the unlock.
        var blocked = new Thread(() =>
        {
            var r = new UserRegs { OrigRax = 72, Rdi = (ulong)b, Rsi = F_OFD_SETLKW, Rdx = Fl + 64, Rip = Rip };
            lock (k.KernelLock) k.Dispatch(ref r);
            Volatile.Write(ref _waiterResult, (long)r.Rax);
        });
        Span<byte> req = stackalloc byte[32];
        BinaryPrimitives.WriteInt16LittleEndian(req, WR);
        _memory.Write(Fl + 64, req);
        blocked.Start();
        Assert.False(blocked.Join(200)); // not a timing assertion: the lock is held, it cannot have returned
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, UN, 0, 0));
        Assert.True(blocked.Join(TimeSpan.FromMinutes(1)), "the waiter was not woken by the unlock");
        Assert.Equal(0, Volatile.Read(ref _waiterResult));
        Assert.Equal(-EAGAIN, Set(k, a, F_OFD_SETLK, RD, 0, 1));
    }

    private long _waiterResult = -1;

    [Fact]
    public void Locks_and_a_blocked_waiter_survive_a_checkpoint()
    {
        var k = NewKernel();
        int a = Open(k), b = Open(k), c = Open(k);
        Assert.Equal(0, Set(k, a, F_OFD_SETLK, WR, 100, 50));
        Assert.Equal(0, Set(k, c, F_SETLK, WR, 0, 10));
        Assert.Equal(0, Set(k, c, F_SETLK, RD, 20, 60));
        Assert.Equal(0, Flock(k, a, LOCK_EX));
        Assert.Equal(0, Flock(k, c, LOCK_UN));
        k.Interrupt = Interrupted(); // the checkpoint's pause comes while b waits for a's lock
        Assert.Equal(SyscallOutcome.Restart, Lock(k, b, F_OFD_SETLKW, WR, 120, 1).Outcome);
        byte[] state = k.SaveState();

        var restored = NewKernel(map: false);
        restored.LoadState(state);
        Assert.Equal((WR, 100L, 50L, -1), Get(restored, b, F_OFD_GETLK, RD, 0, 0));
        Assert.Equal((WR, 0L, 10L, 1), Get(restored, b, F_OFD_GETLK, RD, 0, 15));
        Assert.Equal((RD, 20L, 60L, 1), Get(restored, b, F_OFD_GETLK, WR, 10, 15));
        Assert.Equal(-EAGAIN, Flock(restored, b, LOCK_SH | LOCK_NB));
        Assert.Equal(-EAGAIN, Flock(restored, c, LOCK_SH | LOCK_NB));
        // The restarted wait waits again (and gives way again); once a's description goes, it takes the lock.
        restored.Interrupt = Interrupted();
        Assert.Equal(SyscallOutcome.Restart, Lock(restored, b, F_OFD_SETLKW, WR, 120, 1).Outcome);
        restored.Interrupt = CancellationToken.None;
        Assert.Equal(0, Ok(restored, 3, (ulong)a));
        Assert.Equal((SyscallOutcome.Return, 0L), Lock(restored, b, F_OFD_SETLKW, WR, 120, 1));
        Assert.Equal(0, Flock(restored, c, LOCK_EX | LOCK_NB));
        // Closing c dropped nothing of b's; closing c drops the POSIX locks.
        Assert.Equal(-EAGAIN, Set(restored, c, F_OFD_SETLK, RD, 120, 1));
        Assert.Equal(0, Ok(restored, 3, (ulong)c));
        Assert.Equal(UN, Get(restored, b, F_OFD_GETLK, WR, 0, 100).Type);
    }

    public void Dispose()
    {
        _memory.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
