using System.Net.Sockets;
using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Migration;

/// <summary>
/// An open migration channel: the forward stream (checkpoint records) and the back stream (acks), over a TCP
/// connection or the stdin/stdout of the receiver command (ssh), which runs in the working directory and environment
/// of the `remus migrate`/`protect` invocation (<see cref="MigrationTarget.WithCaller"/>). The command's stderr goes to
/// the VMM log, and its last line into the error when the command dies.
/// The command is started with <see cref="ChildProcess"/>, not System.Diagnostics.Process: using Process would make
/// .NET handle SIGCHLD in this VMM, and every ptrace stop of the guest raises one (~15 µs more per guest syscall).
/// </summary>
public sealed class MigrationChannel : IDisposable
{
    private readonly ChildProcess? _process;
    private readonly TcpClient? _tcp;
    private readonly ManualResetEventSlim _stderrClosed = new();
    private volatile string? _lastStderrLine;

    public Stream Forward { get; }
    public Stream Back { get; }

    private MigrationChannel(Stream forward, Stream back, ChildProcess? process, TcpClient? tcp)
    {
        Forward = forward;
        Back = back;
        _process = process;
        _tcp = tcp;
    }

    public static MigrationChannel Open(MigrationTarget target, Action<string> log)
    {
        if (target.Tcp != null)
        {
            var (host, port) = ParseEndpoint(target.Tcp);
            var tcp = new TcpClient { NoDelay = true };
            try
            {
                tcp.Connect(host, port);
            }
            catch (SocketException e)
            {
                tcp.Dispose();
                throw new RemusException($"cannot connect to {target.Tcp}: {e.Message}");
            }
            var s = tcp.GetStream();
            return new MigrationChannel(s, s, null, tcp);
        }
        ChildProcess process;
        try
        {
            // In the working directory and environment of the `remus migrate`/`protect` that asked (as xl does).
            process = ChildProcess.StartShell(target.ReceiverCommand, target.WorkingDirectory, target.Environment);
        }
        catch (IOException e)
        {
            throw new RemusException(e.Message);
        }
        var channel = new MigrationChannel(process.Stdin, process.Stdout, process, null);
        var stderr = new StreamReader(process.Stderr);
        new Thread(() =>
        {
            try
            {
                while (stderr.ReadLine() is { } line)
                {
                    if (line.Length == 0) continue;
                    channel._lastStderrLine = line;
                    log($"receiver: {line}");
                }
            }
            catch (Exception) { /* the channel closed */ }
            finally { channel._stderrClosed.Set(); }
        }) { IsBackground = true, Name = "receiver stderr" }.Start();
        log($"migration channel: {target.ReceiverCommand} (pid {process.Pid}{(target.WorkingDirectory is { } cwd ? $", in {cwd}" : "")})");
        return channel;
    }

    /// <summary>
    /// After the channel failed: if the receiver command ended (within <paramref name="wait"/>), how — its exit status
    /// and the last line it wrote to stderr, e.g. "the receiver command exited with status 127: /bin/sh: 1: ./remus:
    /// not found". Null for TCP or a command that still runs.
    /// </summary>
    public string? ReceiverFailure(TimeSpan wait)
    {
        if (_process?.WaitForExit(wait) is not { } status) return null;
        _stderrClosed.Wait(TimeSpan.FromSeconds(1)); // its last words may still be in the pipe
        string how = status > 128 ? $"was killed by signal {status - 128}" : $"exited with status {status}";
        return _lastStderrLine is { } last ? $"the receiver command {how}: {last}" : $"the receiver command {how}";
    }

    /// <summary><paramref name="message"/>, followed by how the receiver command ended if it did.</summary>
    public string Explain(string message, TimeSpan wait) => ReceiverFailure(wait) is { } why ? $"{message} ({why})" : message;

    public static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint[(colon + 1)..], out int port) || port is < 1 or > 65535)
            throw new RemusException($"'{endpoint}' is not HOST:PORT");
        return (endpoint[..colon].Trim('[', ']'), port);
    }

    public void Dispose()
    {
        if (_process != null)
        {
            // Forward and Back are the command's stdin and stdout: it closes them without waiting for a reader.
            // The command is not waited for or killed: an ssh client ends by itself once both sides closed, and
            // with -s '' the command is the receiver itself, which goes on as the domain's VMM.
            _process.Dispose();
            return;
        }
        try { Forward.Dispose(); } catch (IOException) { }
        _tcp?.Dispose();
    }
}
