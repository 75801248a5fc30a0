using System.Runtime.InteropServices;
using Remus.Sandbox.Platform;

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
        _wake = HostOs.eventfd(0, HostOs.EFD_CLOEXEC | HostOs.EFD_NONBLOCK);
        if (_wake < 0) throw new IOException($"eventfd: {HostOs.ErrorText(HostOs.LastError)}");
    }

    /// <summary>Reads what is available (blocking until something is); 0 at end of input.</summary>
    public int Read(Span<byte> buffer, CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        using var registration = cancel.Register(Wake);
        var fds = new HostOs.PollFd[2];
        while (true)
        {
            fds[0] = new HostOs.PollFd { Fd = _fd, Events = HostOs.POLLIN };
            fds[1] = new HostOs.PollFd { Fd = _wake, Events = HostOs.POLLIN };
            if (HostOs.poll(fds, 2, -1) < 0)
            {
                if (HostOs.LastError == HostOs.EINTR) continue;
                throw new IOException($"poll: {HostOs.ErrorText(HostOs.LastError)}");
            }
            if (fds[1].Revents != 0)
            {
                Span<byte> drain = stackalloc byte[8];
                HostOs.read(_wake, ref drain[0], 8);
                cancel.ThrowIfCancellationRequested();
            }
            if (fds[0].Revents == 0) continue;
            var n = HostOs.read(_fd, ref MemoryMarshal.GetReference(buffer), buffer.Length);
            if (n >= 0) return (int)n;
            var errno = HostOs.LastError;
            if (errno is HostOs.EINTR or HostOs.EAGAIN) continue;
            return 0; // EIO (terminal gone) or similar: treat as end of input
        }
    }

    /// <summary>The fd's poll revents for POLLIN now (0: a read would wait), without waiting; null if poll fails.</summary>
    public int? Poll()
    {
        var fds = new HostOs.PollFd[1];
        fds[0] = new HostOs.PollFd { Fd = _fd, Events = HostOs.POLLIN };
        while (true)
        {
            if (HostOs.poll(fds, 1, 0) >= 0) return fds[0].Revents;
            if (HostOs.LastError != HostOs.EINTR) return null;
        }
    }

    private void Wake()
    {
        Span<byte> one = stackalloc byte[8];
        one[0] = 1;
        HostOs.write(_wake, ref one[0], 8);
    }

    public void Dispose() => HostOs.close(_wake);
}
