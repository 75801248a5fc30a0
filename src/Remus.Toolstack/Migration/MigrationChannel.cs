using System.Net.Sockets;
using Remus.Sandbox.Platform;

namespace Remus.Toolstack.Migration;

/// <summary>
/// An open migration channel: the forward stream (checkpoint records) and the back stream (acks), over a TCP
/// connection or the stdin/stdout of the receiver command (ssh). The command's stderr goes to the VMM log.
/// The command is started with <see cref="ChildProcess"/>, not System.Diagnostics.Process: using Process would make
/// .NET handle SIGCHLD in this VMM, and every ptrace stop of the guest raises one (~15 µs more per guest syscall).
/// </summary>
public sealed class MigrationChannel : IDisposable
{
    private readonly ChildProcess? _process;
    private readonly TcpClient? _tcp;

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
            process = ChildProcess.StartShell(target.ReceiverCommand);
        }
        catch (IOException e)
        {
            throw new RemusException(e.Message);
        }
        var stderr = new StreamReader(process.Stderr);
        new Thread(() =>
        {
            try
            {
                while (stderr.ReadLine() is { } line)
                    if (line.Length > 0) log($"receiver: {line}");
            }
            catch (Exception) { /* the channel closed */ }
        }) { IsBackground = true, Name = "receiver stderr" }.Start();
        log($"migration channel: {target.ReceiverCommand} (pid {process.Pid})");
        return new MigrationChannel(process.Stdin, process.Stdout, process, null);
    }

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
