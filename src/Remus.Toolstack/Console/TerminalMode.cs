using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Console;

/// <summary>
/// Makes Ctrl-] end a line on our terminal (it becomes VEOL) so that <c>remus console</c> sees it at once, while the
/// terminal keeps echo and line editing (the sandbox has no line discipline of its own). Restores the terminal on
/// dispose.
/// </summary>
internal sealed class TerminalMode : IDisposable
{
    public const byte DetachKey = 0x1d; // Ctrl-]

    // struct termios on x86-64 glibc: 4 tcflag_t (16 bytes), c_line, c_cc[32], 3 bytes padding, 2 speed_t = 60 bytes.
    private const int TermiosSize = 60;
    private const int CcOffset = 17;
    private const int VEOL = 11;

    private readonly int _fd;
    private readonly byte[] _saved;

    private TerminalMode(int fd, byte[] saved)
    {
        _fd = fd;
        _saved = saved;
    }

    /// <summary>Null when <paramref name="fd"/> is not a terminal.</summary>
    public static TerminalMode? DetachKeyEndsLine(int fd)
    {
        if (HostOs.isatty(fd) != 1) return null;
        var saved = new byte[TermiosSize];
        if (HostOs.tcgetattr(fd, saved) != 0) return null;
        var changed = (byte[])saved.Clone();
        changed[CcOffset + VEOL] = DetachKey;
        return HostOs.tcsetattr(fd, HostOs.TCSANOW, changed) == 0 ? new TerminalMode(fd, saved) : null;
    }

    public void Dispose() => HostOs.tcsetattr(_fd, HostOs.TCSANOW, _saved);
}
