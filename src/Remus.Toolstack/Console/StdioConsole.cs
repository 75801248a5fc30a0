using Remus.Sandbox;

namespace Remus.Toolstack.Console;

/// <summary>
/// The console of <c>remus run</c>: the program's stdout and stderr go straight (unbuffered, in order, apart) to our
/// fds 1 and 2, its stdin reads our fd 0. The program sees a terminal when our stdout is one (as it would natively
/// for its fd 1, which decides stdio buffering).
/// </summary>
public sealed class StdioConsole : IConsole, IDisposable
{
    private readonly Lazy<CancellableFdReader> _stdin = new(() => new CancellableFdReader(0));
    private int _broken;

    public bool IsTerminal { get; } = FdIo.IsTerminal(1);

    /// <summary>Raised once when our stdout or stderr is closed by its reader (EPIPE), on the writing thread.</summary>
    public event Action? OutputClosed;

    /// <summary>Whether a write failed because the reader went away (natively: SIGPIPE).</summary>
    public bool IsOutputClosed => Volatile.Read(ref _broken) != 0;

    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        if (IsOutputClosed) return;
        if (!FdIo.WriteAll(stream == 2 ? 2 : 1, data) && Interlocked.Exchange(ref _broken, 1) == 0)
            OutputClosed?.Invoke();
    }

    public int Read(Span<byte> buffer, CancellationToken cancel) => _stdin.Value.Read(buffer, cancel);

    /// <summary>Our fd 0's readiness as the host polls it (a pipe's or terminal's POLLIN/POLLHUP).</summary>
    public int? PollInput() => _stdin.Value.Poll();

    public void Dispose()
    {
        if (_stdin.IsValueCreated) _stdin.Value.Dispose();
    }
}
