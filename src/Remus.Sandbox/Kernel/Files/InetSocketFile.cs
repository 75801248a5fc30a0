using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// An open AF_INET socket: the file over an <see cref="IInetSocket"/> of the domain's stack (TCP or UDP), with
/// sockaddr_in in and out. The stack keeps the socket's state (and checkpoints it); this file names it by
/// <see cref="IInetSocket.Id"/>. Releasing the last reference closes the socket (TCP lives on in the stack until done).
/// The stack's timers (retransmission, delayed ACK, TIME_WAIT…) are run by the domain's timer thread when it has a
/// [network]; a loopback-only domain has none, so a call waiting on a socket wakes at the stack's next deadline
/// (<see cref="NextEventNs"/>) and every look at the socket runs what is due first (as a timerfd's expiry is noticed).
/// </summary>
internal sealed class InetSocketFile(IInetSocket socket, int flags, NetStack? stack) : SocketFile(flags)
{
    public const int SockaddrInSize = 16;

    public IInetSocket Socket { get; } = socket;

    public override int Family => AF_INET;
    public override int SocketType => Socket.Type;
    public override int Protocol => Socket.Type == SOCK_STREAM ? 6 : 17;
    public override WaitQueue Queue => Socket.Queue;
    public override PollEvents Readiness()
    {
        RunDueTimers();
        return Socket.Readiness();
    }

    public override long NextEventNs => Math.Min(Socket.NextEventNs, stack?.NextDeadlineNs ?? long.MaxValue);

    /// <summary>Runs the stack's timers that are due (when nothing else drives them: see the class summary).</summary>
    private void RunDueTimers()
    {
        if (stack != null && stack.NextDeadlineNs <= stack.NowNs()) stack.RunTimers();
    }

    private bool _listening;
    public override bool IsListening => _listening;

    /// <summary>A sockaddr_in, or a negated errno (EINVAL short, EAFNOSUPPORT another family).</summary>
    public static long Parse(ReadOnlySpan<byte> address, out NetEndpoint endpoint, bool allowUnspec = false)
    {
        endpoint = default;
        if (address.Length < SockaddrInSize) return -Errno.EINVAL;
        int family = BinaryPrimitives.ReadUInt16LittleEndian(address);
        var ip = IPv4Address.Read(address[4..]);
        if (family != AF_INET && !(allowUnspec && family == 0 && ip.IsAny)) return -Errno.EAFNOSUPPORT;
        endpoint = new NetEndpoint(ip, BinaryPrimitives.ReadUInt16BigEndian(address[2..]));
        return 0;
    }

    /// <summary>Writes a sockaddr_in (truncated to the span); returns its whole length.</summary>
    public static int Write(Span<byte> address, NetEndpoint e)
    {
        Span<byte> full = stackalloc byte[SockaddrInSize];
        full.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(full, AF_INET);
        BinaryPrimitives.WriteUInt16BigEndian(full[2..], e.Port);
        e.Address.Write(full[4..]);
        int n = Math.Min(SockaddrInSize, address.Length);
        full[..n].CopyTo(address);
        return SockaddrInSize;
    }

    public override long Bind(ReadOnlySpan<byte> address)
    {
        long r = Parse(address, out var e, allowUnspec: true);
        return r < 0 ? r : Socket.Bind(e);
    }

    public override long Listen(int backlog)
    {
        if (Socket.Type != SOCK_STREAM) return -Errno.EOPNOTSUPP;
        long r = Socket.Listen(backlog);
        if (r == 0) _listening = true;
        return r;
    }

    public override long Accept(int flags, out SocketFile? accepted)
    {
        accepted = null;
        if (Socket.Type != SOCK_STREAM) return -Errno.EOPNOTSUPP;
        RunDueTimers();
        long r = Socket.Accept(out var s);
        if (r < 0) return r;
        accepted = new InetSocketFile(s!, flags, stack);
        return 0;
    }

    /// <summary>
    /// Linux's sock->state SS_CONNECTING: a connect answered EINPROGRESS and not yet seen through. The first connect
    /// after the handshake completed returns 0 (inet_stream_connect moves to SS_CONNECTED then), later ones EISCONN.
    /// </summary>
    public bool Connecting { get; set; }

    public override long Connect(ReadOnlySpan<byte> address)
    {
        if (address.Length >= 2 && BinaryPrimitives.ReadUInt16LittleEndian(address) == 0 /* AF_UNSPEC */)
        {
            Connecting = false;
            return Socket.Connect(default, disconnect: true);
        }
        long r = Parse(address, out var e);
        if (r < 0) return r;
        r = Socket.Connect(e);
        if (r == -Errno.EINPROGRESS) Connecting = true;
        else if (r == -Errno.EISCONN && Connecting)
        {
            Connecting = false;
            return 0;
        }
        return r;
    }

    public override long Send(ReadOnlySpan<byte> data, int flags, ReadOnlySpan<byte> to)
    {
        RunDueTimers();
        NetEndpoint? dest = null;
        if (!to.IsEmpty && Socket.Type != SOCK_STREAM)
        {
            long r = Parse(to, out var e);
            if (r < 0) return r;
            dest = e;
        }
        return Socket.Send(data, flags, dest);
    }

    public override long Receive(Span<byte> buffer, int flags, Span<byte> from, out int fromLength, out int fullLength)
    {
        RunDueTimers();
        long r = Socket.Receive(buffer, flags, out var source, out fullLength);
        // TCP leaves msg_name alone (recvfrom reports length 0); UDP gives the datagram's source.
        fromLength = r >= 0 && Socket.Type != SOCK_STREAM ? Write(from, source) : 0;
        return r;
    }

    public override long Shutdown(int how) => Socket.Shutdown(how);

    public override int LocalName(Span<byte> address) => Write(address, Socket.LocalEndpoint);

    public override long PeerName(Span<byte> address) =>
        Socket.RemoteEndpoint is { } e ? Write(address, e) : -Errno.ENOTCONN;

    public override long SetOption(int level, int name, ReadOnlySpan<byte> value) => Socket.SetOption(level, name, value);

    public override long GetOption(int level, int name, Span<byte> value) => Socket.GetOption(level, name, value);

    public override int TakeError()
    {
        RunDueTimers();
        return Socket.TakeError();
    }

    public override int ReadableBytes => Socket.ReadableBytes;

    public override int UnsentBytes => Socket.UnsentBytes;

    /// <summary>Restores what the file itself knows beyond the socket (after the stack's state is back).</summary>
    public void RestoreListening(bool listening, bool connecting)
    {
        _listening = listening;
        Connecting = connecting;
    }

    private bool _released;

    public override void Release()
    {
        if (_released) return;
        _released = true;
        Socket.Close();
    }
}
