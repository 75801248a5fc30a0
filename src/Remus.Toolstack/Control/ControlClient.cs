using System.Net.Sockets;
using System.Text.Json;

namespace Remus.Toolstack.Control;

/// <summary>The VMM of a domain went away (its socket refuses connections, or it closed the connection early).</summary>
public sealed class VmmGoneException(string message) : RemusException(message);

/// <summary>One connection to a VMM's control socket: one request, one response (then console traffic, maybe).</summary>
public sealed class ControlClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    private ControlClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Input = new BufferedStream(_stream, 64 * 1024);
    }

    /// <summary>Reads what the VMM sends (buffered; after a console request, the frames).</summary>
    public Stream Input { get; }

    /// <summary>Writes to the VMM (after a console request: the program's stdin).</summary>
    public Stream Output => _stream;

    public Socket Socket => _socket;

    /// <summary>Connects, or returns null when no VMM listens there any more (a stale socket).</summary>
    public static ControlClient? TryConnect(string socketPath, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var cancel = new CancellationTokenSource(timeout);
            socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel.Token).AsTask().GetAwaiter().GetResult();
            return new ControlClient(socket);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable
                                             || !File.Exists(socketPath))
        {
            socket.Dispose();
            return null;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new RemusException($"cannot connect to '{socketPath}': {e.Message}");
        }
        catch (OperationCanceledException)
        {
            socket.Dispose();
            throw new RemusException($"timed out connecting to '{socketPath}'");
        }
    }

    /// <summary>Sends a request and reads the response line; throws <see cref="VmmGoneException"/> if the VMM
    /// closes the connection first and <see cref="RemusException"/> if it does not answer in time.</summary>
    public ControlResponse Call(ControlRequest request, TimeSpan timeout) => Call(request, timeout, null);

    /// <summary>Sends a request; progress lines of a long operation go to <paramref name="progress"/>.</summary>
    public ControlResponse Call(ControlRequest request, TimeSpan timeout, Action<string>? progress)
    {
        var line = JsonSerializer.SerializeToUtf8Bytes(request, ToolstackJson.Default.ControlRequest);
        try
        {
            _socket.SendTimeout = (int)timeout.TotalMilliseconds;
            _stream.Write(line);
            _stream.WriteByte((byte)'\n');
            _socket.ReceiveTimeout = timeout == Timeout.InfiniteTimeSpan ? 0 : (int)timeout.TotalMilliseconds;
            ControlResponse parsed;
            while (true)
            {
                var response = ReadLine() ?? throw new VmmGoneException("the domain's VMM closed the connection");
                parsed = JsonSerializer.Deserialize(response, ToolstackJson.Default.ControlResponse)
                         ?? throw new RemusException("empty response from the domain's VMM");
                if (parsed.Progress is null) break;
                progress?.Invoke(parsed.Progress);
            }
            _socket.ReceiveTimeout = 0;
            if (parsed.Version != ControlProtocol.Version)
                throw new RemusException($"the domain's VMM speaks control protocol {parsed.Version}, this remus speaks {ControlProtocol.Version}");
            return parsed;
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            throw new RemusException("the domain's VMM is not responding");
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted })
        {
            throw new VmmGoneException("the domain's VMM closed the connection");
        }
        catch (JsonException e)
        {
            throw new RemusException($"malformed response from the domain's VMM: {e.Message}");
        }
    }

    private byte[]? ReadLine()
    {
        var buffer = new MemoryStream();
        while (true)
        {
            var b = Input.ReadByte();
            if (b < 0) return null;
            if (b == '\n') return buffer.ToArray();
            if (buffer.Length >= ControlProtocol.MaxLineBytes) throw new RemusException("response line from the domain's VMM is too long");
            buffer.WriteByte((byte)b);
        }
    }

    public void Dispose()
    {
        Input.Dispose();
        _stream.Dispose();
    }
}
