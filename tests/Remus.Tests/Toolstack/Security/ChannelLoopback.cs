using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Remus.Tests.Support;
using Remus.Toolstack.Security;

namespace Remus.Tests.Toolstack.Security;

/// <summary>Loopback TCP for the channel tests: connected pairs, both ends of a handshake at once, a tampering relay.</summary>
internal static class ChannelLoopback
{
    /// <summary>How long a test waits for something that should happen at once (a hang guard, never a measurement).</summary>
    public static TimeSpan Patience => TestTimeouts.Scaled(TimeSpan.FromSeconds(60));

    /// <summary>A connected TCP pair on 127.0.0.1 (a free port).</summary>
    public static (NetworkStream Connecting, NetworkStream Accepting) Pair()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        client.Connect(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        TcpClient server = listener.AcceptTcpClient();
        client.NoDelay = server.NoDelay = true;
        return (client.GetStream(), server.GetStream());
    }

    /// <summary>What one end of a handshake ended with: a stream or an exception.</summary>
    public sealed record Outcome(Stream? Stream, Exception? Error)
    {
        public Stream Ok => Stream ?? throw new Xunit.Sdk.XunitException($"the handshake failed: {Error}");
        public ChannelAuthenticationException Refused =>
            Error as ChannelAuthenticationException
            ?? throw new Xunit.Sdk.XunitException($"expected a ChannelAuthenticationException, got {(Error is null ? "a stream" : Error.ToString())}");
    }

    /// <summary>Runs <see cref="SecureChannel.Connect"/> and <see cref="SecureChannel.Accept"/> at once over two streams.</summary>
    public static (Outcome Connecting, Outcome Accepting) Handshake(
        Stream connecting, ChannelSecurity connectSecurity, Stream accepting, ChannelSecurity acceptSecurity, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? Patience;
        Task<Outcome> c = Task.Factory.StartNew(() => Run(() => SecureChannel.Connect(connecting, connectSecurity, "accepting-peer", limit)), TaskCreationOptions.LongRunning);
        Task<Outcome> a = Task.Factory.StartNew(() => Run(() => SecureChannel.Accept(accepting, acceptSecurity, "connecting-peer", limit)), TaskCreationOptions.LongRunning);
        if (!Task.WaitAll([c, a], Patience)) throw new TimeoutException("the handshake hung");
        return (c.Result, a.Result);
    }

    public static (Outcome Connecting, Outcome Accepting) Handshake(ChannelSecurity connectSecurity, ChannelSecurity acceptSecurity, TimeSpan? timeout = null)
    {
        (NetworkStream c, NetworkStream a) = Pair();
        return Handshake(c, connectSecurity, a, acceptSecurity, timeout);
    }

    public static Outcome Run(Func<Stream> open)
    {
        try { return new Outcome(open(), null); }
        catch (Exception e) { return new Outcome(null, e); }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; the count read.</summary>
    public static int ReadFully(Stream stream, Span<byte> buffer) => stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
}

/// <summary>
/// A man in the middle on loopback: the connecting end talks to <see cref="Connecting"/>, the accepting end reads
/// <see cref="Accepting"/>. Accepting-to-connecting bytes pass unchanged. Connecting-to-accepting: the first
/// <c>handshakeBytes</c> pass unchanged, then the bytes are cut into PSK frames (u32 length, body, 16-byte tag) and each
/// is handed to <c>tamper(index, frame)</c>, which returns what to send instead (nothing, the frame, several frames).
/// Everything the connecting end sent is kept in <see cref="Recorded"/>.
/// </summary>
internal sealed class ChannelRelay : IDisposable
{
    private readonly NetworkStream _fromConnecting, _toAccepting;
    private Thread? _forward, _back;
    private readonly MemoryStream _recorded = new();

    public Stream Connecting { get; }
    public Stream Accepting { get; }

    public ChannelRelay(int handshakeBytes, Func<int, byte[], IEnumerable<byte[]>> tamper)
        : this(() => { }) => Start(() => Forward(handshakeBytes, tamper));

    /// <summary>A raw relay (any protocol) that flips one bit of the connecting end's byte at <paramref name="flipAt"/>.</summary>
    public ChannelRelay(long flipAt) : this(() => { }) => Start(() => ForwardRaw(flipAt));

    private ChannelRelay(Action _)
    {
        (NetworkStream connecting, _fromConnecting) = ChannelLoopback.Pair();
        (_toAccepting, NetworkStream accepting) = ChannelLoopback.Pair();
        Connecting = connecting;
        Accepting = accepting;
    }

    private void Start(Action forward)
    {
        _forward = new Thread(() => forward()) { IsBackground = true, Name = "relay forward" };
        _back = new Thread(() => Copy(_toAccepting, _fromConnecting)) { IsBackground = true, Name = "relay back" };
        _forward.Start();
        _back.Start();
    }

    private void ForwardRaw(long flipAt)
    {
        try
        {
            byte[] buffer = new byte[16 * 1024];
            for (long at = 0, n; (n = _fromConnecting.Read(buffer)) > 0; at += n)
            {
                if (flipAt >= at && flipAt < at + n) buffer[flipAt - at] ^= 0x01;
                Record(buffer.AsSpan(0, (int)n).ToArray());
                _toAccepting.Write(buffer, 0, (int)n);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        finally { Shut(_toAccepting); }
    }

    public byte[] Recorded { get { lock (_recorded) return _recorded.ToArray(); } }

    private void Forward(int handshakeBytes, Func<int, byte[], IEnumerable<byte[]>> tamper)
    {
        try
        {
            byte[] handshake = new byte[handshakeBytes];
            if (ChannelLoopback.ReadFully(_fromConnecting, handshake) < handshakeBytes) return;
            Record(handshake);
            _toAccepting.Write(handshake);
            for (int index = 0; ; index++)
            {
                byte[] header = new byte[4];
                if (ChannelLoopback.ReadFully(_fromConnecting, header) < 4) break;
                uint length = BinaryPrimitives.ReadUInt32BigEndian(header);
                byte[] frame = new byte[4 + length + 16];
                header.CopyTo(frame, 0);
                if (ChannelLoopback.ReadFully(_fromConnecting, frame.AsSpan(4)) < frame.Length - 4) break;
                Record(frame);
                foreach (byte[] send in tamper(index, frame)) _toAccepting.Write(send);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        finally { Shut(_toAccepting); }
    }

    private void Record(byte[] bytes) { lock (_recorded) _recorded.Write(bytes); }

    private static void Copy(NetworkStream from, NetworkStream to)
    {
        try { from.CopyTo(to); }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        finally { Shut(to); }
    }

    private static void Shut(NetworkStream s)
    {
        try { s.Socket.Shutdown(SocketShutdown.Send); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _fromConnecting.Dispose();
        _toAccepting.Dispose();
        _forward?.Join(ChannelLoopback.Patience);
        _back?.Join(ChannelLoopback.Patience);
    }
}
