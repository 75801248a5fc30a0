using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Net.Sockets;

/// <summary>
/// An AF_INET socket of the domain's stack (TCP or UDP) as the syscall layer uses it. Results are counts or 0, or a
/// negated Linux errno. Nothing here ever blocks: a call that would wait returns -EAGAIN (connect: -EINPROGRESS) and
/// the syscall layer waits on <see cref="Queue"/> unless the file is O_NONBLOCK, then asks again. Every change that
/// may alter <see cref="Readiness"/> notifies <see cref="Queue"/>. All calls run under the kernel lock.
/// </summary>
internal interface IInetSocket
{
    /// <summary>Stable id within the stack: the kernel's checkpoint names the socket by it.</summary>
    int Id { get; }

    /// <summary>SOCK_STREAM (1) or SOCK_DGRAM (2).</summary>
    int Type { get; }

    WaitQueue Queue { get; }

    /// <summary>poll bits now: In (data, EOF, a connection to accept), Out (room), Err (pending SO_ERROR), Hup, RdHup.</summary>
    PollEvents Readiness();

    /// <summary>When readiness changes by itself (never for sockets, whose changes always notify); long.MaxValue.</summary>
    long NextEventNs => long.MaxValue;

    long Bind(NetEndpoint local);

    long Listen(int backlog);

    /// <summary>
    /// Starts a connection (TCP: sends SYN, returns -EINPROGRESS; the syscall layer then waits for Out|Err and returns
    /// <see cref="TakeError"/> for a blocking socket; a second call while connecting is -EALREADY, once connected -EISCONN).
    /// UDP: sets the default peer, 0. AF_UNSPEC (<paramref name="disconnect"/>) dissolves a UDP association.
    /// </summary>
    long Connect(NetEndpoint remote, bool disconnect = false);

    /// <summary>A connection from the accept queue, or -EAGAIN (-EINVAL when not listening).</summary>
    long Accept(out IInetSocket? accepted);

    /// <summary>
    /// Queues data. TCP: what fits in the send buffer (-EAGAIN when none fits; -EPIPE after shutdown or reset, the
    /// syscall layer raises SIGPIPE unless MSG_NOSIGNAL). UDP: one datagram to <paramref name="to"/> or the peer.
    /// </summary>
    long Send(ReadOnlySpan<byte> data, int flags, NetEndpoint? to);

    /// <summary>
    /// Takes (or with MSG_PEEK copies) received data: TCP, 0 at end of stream; UDP, one datagram (truncated to the buffer;
    /// <paramref name="fullLength"/> is its whole length for MSG_TRUNC), its source in <paramref name="from"/>.
    /// -EAGAIN when nothing is there.
    /// </summary>
    long Receive(Span<byte> buffer, int flags, out NetEndpoint from, out int fullLength);

    /// <summary>SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2; -ENOTCONN when not connected.</summary>
    long Shutdown(int how);

    /// <summary>The last reference went: TCP sends FIN (or RST with unread data or SO_LINGER 0) and lives on in the stack until done.</summary>
    void Close();

    /// <summary>The bound address (0.0.0.0:0 before bind).</summary>
    NetEndpoint LocalEndpoint { get; }

    /// <summary>The peer; null when not connected (getpeername: -ENOTCONN).</summary>
    NetEndpoint? RemoteEndpoint { get; }

    /// <summary>setsockopt for SOL_SOCKET (1), IPPROTO_IP (0), IPPROTO_TCP (6), IPPROTO_UDP (17).</summary>
    long SetOption(int level, int name, ReadOnlySpan<byte> value);

    /// <summary>getsockopt: writes the value into <paramref name="value"/> and returns its length, or a negated errno.</summary>
    long GetOption(int level, int name, Span<byte> value);

    /// <summary>SO_ERROR: takes the pending error (positive errno, 0 for none).</summary>
    int TakeError();

    /// <summary>FIONREAD / SIOCINQ: bytes readable now (UDP: the next datagram's length).</summary>
    int ReadableBytes { get; }

    /// <summary>SIOCOUTQ: bytes sent and not yet acknowledged plus those not yet sent.</summary>
    int UnsentBytes { get; }
}
