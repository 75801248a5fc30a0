namespace Remus.Sandbox;

/// <summary>
/// The domain's console as the sandbox kernel sees it: fd 0 reads from it, fds 1 and 2 write to it.
/// The toolstack supplies it (pass-through for `remus run`, a log file and attached clients for detached domains);
/// output commit (Remus) later wraps it to hold output per epoch.
/// </summary>
public interface IConsole
{
    /// <summary>Writes program output. <paramref name="stream"/> is 1 (stdout) or 2 (stderr).</summary>
    void Write(int stream, ReadOnlySpan<byte> data);

    /// <summary>
    /// Writes as much of <paramref name="data"/> as the console takes now and returns how much that was (0: none, the
    /// console is full). A console with bounded output (output commit's held output, <c>held_output_mib</c>) takes
    /// only what fits, and the program's write waits — pausable, like a write to a full pipe — until there is room:
    /// back-pressure, never dropped output and never an unbounded VMM. Others take everything (<see cref="Write"/>).
    /// </summary>
    int TryWrite(int stream, ReadOnlySpan<byte> data)
    {
        Write(stream, data);
        return data.Length;
    }

    /// <summary>Whether a write now would be taken (at least in part) without waiting: poll's POLLOUT on fds 1 and 2.</summary>
    bool CanWrite => true;

    /// <summary>
    /// Blocks until input is available and copies it; returns 0 at end of input.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancel"/> fires (pause, destroy).
    /// </summary>
    int Read(Span<byte> buffer, CancellationToken cancel);

    /// <summary>Whether the program should see a terminal (isatty, TCGETS) on fds 0-2.</summary>
    bool IsTerminal { get; }

    /// <summary>
    /// The input's readiness now, as poll(2) revents bits (POLLIN 0x1: a read would return data; POLLHUP 0x10: the
    /// input ended; POLLERR 0x8), 0 when a read would wait; null when this console cannot tell (the program's stdin then
    /// always polls readable). Never blocks.
    /// </summary>
    int? PollInput() => null;
}
