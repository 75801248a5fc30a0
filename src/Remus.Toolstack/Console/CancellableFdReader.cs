using System.Runtime.InteropServices;
using Remus.Toolstack.Native;

namespace Remus.Toolstack.Console;

/// <summary>
/// Blocking reads of a file descriptor (our stdin) that a CancellationToken can interrupt: poll(2) waits on the
/// descriptor and on an eventfd that the cancellation signals.
/// </summary>
internal sealed class CancellableFdReader : IDisposable
{
    private readonly int _fd;
    private readonly int _wake;

    public CancellableFdReader(int fd)
    {
        _fd = fd;
        _wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wake < 0) throw new IOException($"eventfd: {Libc.ErrorText(Libc.LastError)}");
    }

    /// <summary>Reads what is available (blocking until something is); 0 at end of input.</summary>
    public int Read(Span<byte> buffer, CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        using var registration = cancel.Register(Wake);
        var fds = new Libc.PollFd[2];
        while (true)
        {
            fds[0] = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
            fds[1] = new Libc.PollFd { Fd = _wake, Events = Libc.POLLIN };
            if (Libc.poll(fds, 2, -1) < 0)
            {
                if (Libc.LastError == Libc.EINTR) continue;
                throw new IOException($"poll: {Libc.ErrorText(Libc.LastError)}");
            }
            if (fds[1].Revents != 0)
            {
                Span<byte> drain = stackalloc byte[8];
                Libc.read(_wake, ref drain[0], 8);
                cancel.ThrowIfCancellationRequested();
            }
            if (fds[0].Revents == 0) continue;
            var n = Libc.read(_fd, ref MemoryMarshal.GetReference(buffer), buffer.Length);
            if (n >= 0) return (int)n;
            var errno = Libc.LastError;
            if (errno is Libc.EINTR or Libc.EAGAIN) continue;
            return 0; // EIO (terminal gone) or similar: treat as end of input
        }
    }

    private void Wake()
    {
        Span<byte> one = stackalloc byte[8];
        one[0] = 1;
        Libc.write(_wake, ref one[0], 8);
    }

    public void Dispose() => Libc.close(_wake);
}
