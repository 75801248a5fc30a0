using System.Net.Sockets;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Security;

namespace Remus.Toolstack.Migration;

/// <summary>
/// An open migration channel: the forward stream (checkpoint records) and the back stream (acks), over a TCP
/// connection (protected by TLS or a pre-shared key, or plain with --insecure: <see cref="SecureChannel"/>, whose
/// handshake completes before the stream is used) or the stdin/stdout of the receiver command (ssh), which runs in the working directory and environment
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

    /// <summary>How long the TLS or pre-shared-key handshake of a TCP channel may take, on either end.</summary>
    public static readonly TimeSpan AuthenticationTimeout = TimeSpan.FromSeconds(15);

    public static MigrationChannel Open(MigrationTarget target, Action<string> log)
    {
        if (target.Tcp != null)
        {
            // The CLI resolved it (command line, else host config, else refused): a target without one is not sent plain.
            var security = target.Security ?? throw new RemusException(
                $"the TCP channel to {target.Tcp} has no protection chosen (--tls-cert/--tls-key/--tls-ca, --psk-file or --insecure)");
            var (host, port) = ParseEndpoint(target.Tcp);
            var tcp = new TcpClient { NoDelay = true };
            Stream s;
            try
            {
                tcp.Connect(host, port);
                s = Protect(tcp.GetStream(), security, target.Tcp, accept: false);
            }
            catch (SocketException e)
            {
                tcp.Dispose();
                throw new RemusException($"cannot connect to {target.Tcp}: {e.Message}");
            }
            catch
            {
                tcp.Dispose();
                throw;
            }
            log($"migration channel: tcp:{target.Tcp}, {security.Describe()}");
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

    /// <summary>
    /// A connected TCP stream wrapped as <paramref name="security"/> asks (<see cref="SecureChannel"/>), its
    /// handshake done: a peer that cannot authenticate is one line (<see cref="ChannelAuthenticationException"/>).
    /// Plain TCP (--insecure) is the stream itself.
    /// </summary>
    public static Stream Protect(Stream transport, ChannelSecurity security, string peer, bool accept)
    {
        if (security.Mode == ChannelMode.Insecure) return transport;
        try
        {
            return accept
                ? SecureChannel.Accept(transport, security, peer, AuthenticationTimeout)
                : SecureChannel.Connect(transport, security, peer, AuthenticationTimeout);
        }
        catch (IOException e)
        {
            throw new ChannelAuthenticationException($"the {security.Describe()} handshake with {peer} failed: {e.Message}", e);
        }
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
