using System.Runtime.InteropServices;
using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Console;

/// <summary>
/// Unbuffered reads and writes on our own file descriptors 0, 1 and 2, bypassing System.Console (which would buffer,
/// translate, or line-edit a terminal).
/// </summary>
internal static class FdIo
{
    /// <summary>Writes all of <paramref name="data"/>; false when the reader has gone (EPIPE) or the fd is unusable.</summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            var n = HostOs.write(fd, ref MemoryMarshal.GetReference(data), data.Length);
            if (n > 0)
            {
                data = data[(int)n..];
                continue;
            }
            var errno = HostOs.LastError;
            if (n < 0 && errno == HostOs.EINTR) continue;
            if (n < 0 && errno == HostOs.EAGAIN)
            {
                // A non-blocking descriptor (inherited): wait until it drains.
                HostOs.poll([new HostOs.PollFd { Fd = fd, Events = 0x4 /* POLLOUT */ }], 1, 1000);
                continue;
            }
            return false;
        }
        return true;
    }

    public static bool IsTerminal(int fd) => HostOs.isatty(fd) == 1;
}

/// <summary>Terminal questions the CLI asks about its own file descriptors.</summary>
public static class Terminal
{
    public static bool IsTerminal(int fd) => FdIo.IsTerminal(fd);
}
