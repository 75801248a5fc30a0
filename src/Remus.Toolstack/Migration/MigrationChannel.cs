using System.Diagnostics;
using System.Net.Sockets;

namespace Remus.Toolstack.Migration;

/// <summary>
/// An open migration channel: the forward stream (checkpoint records) and the back stream (acks), over a TCP
/// connection or the stdin/stdout of the receiver command (ssh). The command's stderr goes to the VMM log.
/// </summary>
public sealed class MigrationChannel : IDisposable
{
    private readonly Process? _process;
    private readonly TcpClient? _tcp;

    public Stream Forward { get; }
    public Stream Back { get; }

    private MigrationChannel(Stream forward, Stream back, Process? process, TcpClient? tcp)
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
        var start = new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", target.ReceiverCommand },
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new RemusException($"cannot run '{target.ReceiverCommand}'");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new RemusException($"cannot run '{target.ReceiverCommand}': {e.Message}");
        }
        process.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) log($"receiver: {line}"); };
        process.BeginErrorReadLine();
        log($"migration channel: {target.ReceiverCommand} (pid {process.Id})");
        return new MigrationChannel(process.StandardInput.BaseStream, process.StandardOutput.BaseStream, process, null);
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
        try { Forward.Dispose(); } catch (IOException) { }
        try { Back.Dispose(); } catch (IOException) { }
        _tcp?.Dispose();
        // The command is not waited for or killed: an ssh client ends by itself once both sides closed, and with
        // -s '' the command is the receiver itself, which goes on as the domain's VMM.
        _process?.Dispose();
    }
}
