using Remus.Sandbox;
using Remus.Sandbox.Kernel;
using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Memory;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// A blocking write to a pipe that put part of its data in before it had to wait, then was interrupted (pause,
/// checkpoint), keeps that progress: its restart — in the same kernel or in a new one restored from a checkpoint —
/// puts in only the rest and returns the whole count, as one uninterrupted write would. Driven at the syscall level
/// (a single-threaded program cannot drain the pipe while it is blocked writing; here the test drains it, as another
/// thread of the program would).
/// </summary>
public sealed class PipeWriteRestartTests : IDisposable
{
    private const ulong Fds = GuestMemory.UserBase, Buf = GuestMemory.UserBase + 4096, Rip = 0x401000;
    private const int Size = 100_000;

    private readonly GuestMemory _memory = new(4 << 20);

    /// <param name="map">Map the test's buffers (a fresh mapping reads as zeros, so a kernel restored over the same
    /// memory takes its mappings from the checkpoint instead).</param>
    private SandboxKernel NewKernel(bool map = true)
    {
        string self = typeof(PipeWriteRestartTests).Assembly.Location;
        var spec = new DomainSpec { ProgramPath = self, MemoryMiB = 4 };
        var mm = new AddressSpace(_memory);
        if (map) mm.Map(Fds, Buf + 128 * 1024, 3); // PROT_READ | PROT_WRITE: the kernel's copies honour the program's mappings
        return new SandboxKernel(_memory, mm, spec, new RecordingConsole(), new FileAccessPolicy(self, []));
    }

    private static (SyscallOutcome Outcome, long Result) Call(SandboxKernel k, long nr, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0)
    {
        var r = new UserRegs { OrigRax = (ulong)nr, Rdi = a0, Rsi = a1, Rdx = a2, Rip = Rip };
        var outcome = k.Dispatch(ref r);
        return (outcome, (long)r.Rax);
    }

    private static CancellationToken Interrupted()
    {
        var cts = new CancellationTokenSource();
        cts.Cancel();
        return cts.Token;
    }

    private (SandboxKernel Kernel, int Reader, int Writer) BlockedWrite()
    {
        var k = NewKernel();
        Assert.Equal((SyscallOutcome.Return, 0), Call(k, 293, Fds)); // pipe2
        int reader = (int)_memory.ReadU32(Fds), writer = (int)_memory.ReadU32(Fds + 4);
        byte[] data = new byte[Size];
        for (int i = 0; i < Size; i++) data[i] = (byte)(i * 7);
        _memory.Write(Buf, data);
        k.Interrupt = Interrupted(); // the pause comes while the write waits for room
        Assert.Equal(SyscallOutcome.Restart, Call(k, 1, (ulong)writer, Buf, Size).Outcome);
        return (k, reader, writer);
    }

    /// <summary>Drains the pipe as another thread would; returns what it held.</summary>
    private static byte[] Drain(SandboxKernel k, int reader)
    {
        var pipe = (PipeFile)k.Fds.Get(reader)!;
        var got = new byte[Size];
        long n = pipe.Read(got, CancellationToken.None);
        return got.AsSpan(0, (int)Math.Max(n, 0)).ToArray();
    }

    private static void AssertPattern(byte[] got, int from)
    {
        for (int i = 0; i < got.Length; i++)
            if (got[i] != (byte)((from + i) * 7)) Assert.Fail($"byte {from + i} of the write is wrong");
    }

    [Fact]
    public void The_restarted_write_puts_in_only_the_rest_and_returns_the_whole_count()
    {
        var (k, reader, writer) = BlockedWrite();
        byte[] first = Drain(k, reader);
        Assert.Equal(65536, first.Length);
        AssertPattern(first, 0);

        k.Interrupt = CancellationToken.None;
        Assert.Equal((SyscallOutcome.Return, (long)Size), Call(k, 1, (ulong)writer, Buf, Size));
        byte[] rest = Drain(k, reader);
        Assert.Equal(Size - 65536, rest.Length);
        AssertPattern(rest, 65536);
    }

    [Fact]
    public void The_progress_of_an_interrupted_write_survives_a_checkpoint()
    {
        var (k, _, _) = BlockedWrite();
        byte[] state = k.SaveState();

        var restored = NewKernel(map: false);
        restored.LoadState(state);
        // The restored kernel's pipe holds the first 64 KiB; drain it and restart the write there.
        var reader = restored.Fds.All.First(e => e.File is PipeFile { IsWriteEnd: false }).Fd;
        var writer = restored.Fds.All.First(e => e.File is PipeFile { IsWriteEnd: true }).Fd;
        AssertPattern(Drain(restored, reader), 0);
        restored.Interrupt = Interrupted(); // were it to start over, it would have to wait again and give way
        Assert.Equal((SyscallOutcome.Return, (long)Size), Call(restored, 1, (ulong)writer, Buf, Size));
        byte[] rest = Drain(restored, reader);
        Assert.Equal(Size - 65536, rest.Length);
        AssertPattern(rest, 65536);
    }

    public void Dispose() => _memory.Dispose();
}
