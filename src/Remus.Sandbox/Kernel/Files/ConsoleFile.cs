using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// The console behind fds 0, 1 and 2: reads come from the domain's console input, writes go to its output. It polls
/// as the pipe or terminal it stands for: stdout and stderr are always writable, stdin is readable when the console
/// has input or reached its end (<see cref="IConsole.PollInput"/>; a console that cannot tell is always readable, as
/// before), so poll, select and epoll (which accepts it: it has a wait queue) see what they would see natively. The
/// console does not notify anyone when input arrives: a waiter looks again every <see cref="InputPollNs"/> while
/// stdin is not ready (<see cref="NextEventNs"/>), and a look that finds it ready wakes the queue (epoll's items).
/// Reads do their own waiting (<see cref="WaitsInReadWrite"/>). A write takes what the console takes now
/// (<see cref="IConsole.TryWrite"/>); a console that is full (held output at its bound) makes it EAGAIN, and a blocking
/// write waits in <c>WriteWaiting</c>, looking again every <see cref="InputPollNs"/>, giving way to pauses and
/// checkpoints with its progress kept, as a write to a full pipe does. Stdout and stderr poll writable while the
/// console can take output; a look that finds it writable again wakes the queue, as for input.
/// </summary>
internal sealed class ConsoleFile(IConsole console, int stream, GuestClock? clock = null) : FileDescription
{
    /// <summary>How often a wait on stdin looks at the console again (10 ms).</summary>
    public const long InputPollNs = 10_000_000;

    private readonly WaitQueue _queue = new();
    private bool _inputWasReady, _outputWasWritable = true;

    public int Stream { get; } = stream;

    public override WaitQueue Queue => _queue;

    public override bool WaitsInReadWrite => true;

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (Stream != 0) return -Errno.EBADF;
        if (buffer.Length == 0) return 0;
        if (NonBlocking && InputEvents() == PollEvents.None) return -Errno.EAGAIN;
        return console.Read(buffer, interrupt);
    }

    public override long Write(ReadOnlySpan<byte> data)
    {
        if (Stream == 0) return -Errno.EBADF;
        if (data.Length == 0) return 0;
        int n = console.TryWrite(Stream, data);
        return n > 0 ? n : -Errno.EAGAIN; // full (held output at its bound): the write waits (WaitingIo.cs)
    }

    public override bool IsTerminal => console.IsTerminal;

    /// <summary>A terminal is one read-write file on all three fds; otherwise stdin is a pipe's read end and stdout and
    /// stderr write ends.</summary>
    private bool HasInput => Stream == 0 || IsTerminal;

    private bool HasOutput => Stream != 0 || IsTerminal;

    public override PollEvents Readiness()
    {
        var mask = PollEvents.None;
        if (HasOutput)
        {
            bool writable = console.CanWrite;
            if (writable && !_outputWasWritable) _queue.Notify(PollEvents.Writable); // room again: epoll's items see it
            _outputWasWritable = writable;
            if (writable) mask = PollEvents.Writable;
        }
        if (!HasInput) return mask;
        var input = InputEvents();
        bool ready = input != PollEvents.None;
        if (ready && !_inputWasReady) _queue.Notify(input);
        _inputWasReady = ready;
        return mask | input;
    }

    /// <summary>The console's input readiness as poll bits: POLLIN, POLLHUP and POLLERR as the host reports them.</summary>
    private PollEvents InputEvents() => console.PollInput() is not { } host
        ? PollEvents.Readable
        : ((host & 0x1) != 0 ? PollEvents.Readable : PollEvents.None) |
          ((host & 0x10) != 0 ? PollEvents.Hup : PollEvents.None) |
          ((host & 0x8) != 0 ? PollEvents.Err : PollEvents.None);

    public override long NextEventNs =>
        clock is not null && (HasInput && InputEvents() == PollEvents.None || HasOutput && !console.CanWrite)
            ? clock.MonotonicNs + InputPollNs
            : long.MaxValue;

    public override long Stat(Span<byte> st)
    {
        st.Clear();
        // A terminal looks like /dev/pts/0 (char device 136:0), anything else like a pipe.
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);                                      // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], IsTerminal ? 0x2190u : 0x1180u);          // st_mode
        BinaryPrimitives.WriteUInt64LittleEndian(st[40..], IsTerminal ? 0x8800UL : 0);               // st_rdev
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], IsTerminal ? 1024 : 4096);                 // st_blksize
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], (ulong)(3 + Stream));                      // st_ino
        return 0;
    }
}
