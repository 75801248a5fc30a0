using Remus.Sandbox;
using Remus.Toolstack.Control;
using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Console;

/// <summary>
/// The console of a domain run by a VMM: everything the program writes goes, in order, to the console_log file
/// (appended), to a replay buffer, to every attached <c>remus console</c> client and, for <c>create -F</c>, to our own
/// stdout/stderr. Its stdin is what the clients (or our own stdin with -F) send. The program sees a terminal, as a
/// Xen guest's console is one: its stdio is line-buffered, so a console shows output as it is written.
/// </summary>
internal sealed class ConsoleHub : IConsole, IDisposable
{
    private const int ReplayCapacity = 64 * 1024;

    private readonly object _gate = new();
    private readonly ReplayBuffer _replay = new(ReplayCapacity);
    private readonly List<ConsoleSession> _sessions = [];
    private readonly List<Task> _pumps = [];
    private readonly Action<string> _log;
    private int _logFd = -1;
    private bool _logFailed;
    private int? _exitStatus;

    public ConsoleHub(Action<string> log) => _log = log;

    public ConsoleInput Input { get; } = new();

    public bool IsTerminal => true;

    /// <summary>Also write the output to our own fds 1 and 2 (create -F).</summary>
    public bool EchoToStdio { get; init; }

    /// <summary>Whether <see cref="OpenLog"/> created the file (so a failed start can remove it).</summary>
    public bool CreatedLog { get; private set; }

    /// <summary>Opens console_log for appending, creating it if needed.</summary>
    public void OpenLog(string path)
    {
        CreatedLog = !File.Exists(path);
        var fd = HostOs.open(path, HostOs.O_WRONLY | HostOs.O_APPEND | HostOs.O_CREAT | HostOs.O_CLOEXEC, 0b110_100_100);
        if (fd < 0) throw new RemusException($"cannot open console_log '{path}': {HostOs.ErrorText(HostOs.LastError)}");
        _logFd = fd;
    }

    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_logFd >= 0 && !FdIo.WriteAll(_logFd, data) && !_logFailed)
            {
                _logFailed = true;
                _log($"writing console_log failed: {HostOs.ErrorText(HostOs.LastError)}");
            }
            _replay.Append(stream, data);
            var kind = stream == 2 ? ConsoleFrameKind.Stderr : ConsoleFrameKind.Stdout;
            for (var i = _sessions.Count - 1; i >= 0; i--)
            {
                if (_sessions[i].Send(kind, data)) continue;
                _log("dropped a console client that fell behind");
                _sessions.RemoveAt(i);
            }
            if (EchoToStdio) FdIo.WriteAll(stream == 2 ? 2 : 1, data);
        }
    }

    public int Read(Span<byte> buffer, CancellationToken cancel) => Input.Read(buffer, cancel);

    /// <summary>Console clients attached now.</summary>
    internal int Clients
    {
        get { lock (_gate) return _sessions.Count; }
    }

    /// <summary>Bytes kept for replay (at most 64 KiB: what a console no one reads costs).</summary>
    internal int ReplaySize
    {
        get { lock (_gate) return _replay.Size; }
    }

    /// <summary>
    /// Serves one console client on <paramref name="connection"/> until the program exits (the client gets the
    /// exit frame) or the client goes away.
    /// </summary>
    public async Task ServeAsync(Stream connection, bool replay)
    {
        var session = new ConsoleSession(connection);
        Task output;
        lock (_gate)
        {
            if (replay)
                foreach (var (stream, data) in _replay.Snapshot())
                    session.Send(stream == 2 ? ConsoleFrameKind.Stderr : ConsoleFrameKind.Stdout, data);
            if (_exitStatus is { } status) session.Finish(status);
            else _sessions.Add(session);
            output = session.PumpOutputAsync();
            _pumps.Add(output);
        }
        _ = session.PumpInputAsync(Input);
        await output.ConfigureAwait(false);
        lock (_gate)
        {
            _sessions.Remove(session);
            _pumps.Remove(output);
        }
    }

    /// <summary>The program exited: tells every client and waits (a little) until they have been told.</summary>
    public void Exit(int exitStatus, TimeSpan drain)
    {
        Task[] pumps;
        lock (_gate)
        {
            _exitStatus = exitStatus;
            foreach (var session in _sessions) session.Finish(exitStatus);
            _sessions.Clear();
            pumps = [.. _pumps];
        }
        Task.WaitAll(pumps, drain);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_logFd >= 0) HostOs.close(_logFd);
            _logFd = -1;
        }
    }
}
