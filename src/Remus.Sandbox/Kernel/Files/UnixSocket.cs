using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>One message (a datagram, or a stream's write) in a receive queue, charged to its sender's send buffer.</summary>
internal sealed class UnixMessage
{
    public required byte[] Data;
    public int Offset;
    public int Length => Data.Length - Offset;

    /// <summary>The socket that sent it (its send buffer is charged until the message is read or dropped).</summary>
    public UnixSocket? Sender;

    /// <summary>The sender's bound name (sun_path bytes) when it had one, for recvfrom's address.</summary>
    public byte[]? From;
}

/// <summary>
/// An AF_UNIX socket inside the domain (Linux's net/unix/af_unix.c): SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
/// A sender puts its data straight into the receiver's queue and is charged for it against its own send buffer
/// (sk_wmem_alloc against sk_sndbuf, default 212992) until it is read. Names live in the domain's
/// <see cref="UnixNamespace"/> (paths and the abstract namespace alike, never on the host). A connect to a listener
/// makes the server-side socket at once and queues it for accept, as unix_stream_connect does. Every change that may
/// alter readiness notifies <see cref="Queue"/>. Everything here is in the checkpoint (SocketsSnapshot.cs).
/// </summary>
internal sealed class UnixSocket(int type, UnixNamespace names)
{
    public const int DefaultBuffer = 212992, MinSendBuffer = 4608, MinReceiveBuffer = 2304, MaxDatagramQueue = 10, SoMaxConn = 4096;

    public enum SocketState : byte { Unconnected, Listening, Connected }

    public int Type { get; } = type;
    public UnixNamespace Names { get; } = names;
    public WaitQueue Queue { get; } = new();
    public SocketState State { get; set; }
    public UnixSocket? Peer { get; set; }

    /// <summary>The bound address as getsockname returns it after sa_family (path with its NUL, or abstract bytes).</summary>
    public byte[]? Name { get; set; }

    /// <summary>Closed by its last file (SOCK_DEAD).</summary>
    public bool Dead { get; set; }

    /// <summary>sk_shutdown: RCV_SHUTDOWN and SEND_SHUTDOWN.</summary>
    public bool ShutRead { get; set; }
    public bool ShutWrite { get; set; }

    /// <summary>sk_err (ECONNRESET after the peer closed with data unread).</summary>
    public int Error { get; set; }

    public LinkedList<UnixMessage> Received { get; } = new();
    public int ReceivedBytes { get; set; }

    /// <summary>Bytes this socket sent that sit in a receiver's queue (sk_wmem_alloc).</summary>
    public int InFlight { get; set; }

    public Queue<UnixSocket> Backlog { get; } = new();
    public int BacklogMax { get; set; }

    public int SendBuffer { get; set; } = DefaultBuffer;
    public int ReceiveBuffer { get; set; } = DefaultBuffer;

    /// <summary>The peer's credentials as SO_PEERCRED reports them (pid, uid, gid), set at connect or socketpair.</summary>
    public (int Pid, int Uid, int Gid)? PeerCred { get; set; }

    /// <summary>Plain SOL_SOCKET options kept for getsockopt (SO_REUSEADDR, SO_KEEPALIVE, SO_PASSCRED …).</summary>
    public SortedDictionary<int, int> Options { get; } = [];

    public bool ConnectionBased => Type != SocketFile.SOCK_DGRAM;

    public PollEvents Readiness()
    {
        var mask = PollEvents.None;
        if (Error != 0) mask |= PollEvents.Err;
        if (ShutRead && ShutWrite) mask |= PollEvents.Hup;
        if (ShutRead) mask |= PollEvents.RdHup | PollEvents.Readable;
        if (Received.Count > 0 || (State == SocketState.Listening && Backlog.Count > 0)) mask |= PollEvents.Readable;
        if (ConnectionBased && State == SocketState.Unconnected) mask |= PollEvents.Hup;
        if (Writable()) mask |= PollEvents.Writable | PollEvents.WrBand;
        return mask;
    }

    private bool Writable()
    {
        if (State == SocketState.Listening || (long)InFlight * 4 > SendBuffer) return false;
        // A datagram socket whose peer is not connected back to it and whose queue is full (unix_dgram_poll).
        return !(Type == SocketFile.SOCK_DGRAM && Peer is { } p && p.Peer != this && p.Received.Count > MaxDatagramQueue);
    }

    public long Listen(int backlog)
    {
        if (!ConnectionBased) return -Errno.EOPNOTSUPP;
        if (Name == null || State == SocketState.Connected) return -Errno.EINVAL;
        BacklogMax = backlog < 0 || backlog > SoMaxConn ? SoMaxConn : backlog; // (unsigned) backlog capped by somaxconn
        if (State != SocketState.Listening)
        {
            State = SocketState.Listening;
            Queue.Notify(PollEvents.None);
        }
        return 0;
    }

    public long Accept(out UnixSocket? accepted)
    {
        accepted = null;
        if (!ConnectionBased) return -Errno.EOPNOTSUPP;
        if (State != SocketState.Listening) return -Errno.EINVAL;
        if (Backlog.Count == 0) return -Errno.EAGAIN;
        accepted = Backlog.Dequeue();
        Queue.Notify(PollEvents.Writable); // room in the queue: a blocked connect looks again (unix_wait_for_peer)
        return 0;
    }

    /// <summary>The listener whose full accept queue made the last connect fail with -EAGAIN (a blocking connect waits on it).</summary>
    public UnixSocket? FullListener { get; set; }

    /// <summary>connect to the socket named <paramref name="target"/> (already looked up); <paramref name="cred"/> is ours.</summary>
    public long Connect(UnixSocket target, (int, int, int) cred)
    {
        if (Type != target.Type) return -Errno.EPROTOTYPE;
        if (!ConnectionBased)
        {
            if (target.Dead) return -Errno.ECONNREFUSED;
            // unix_dgram_connect: the peer a send goes to by default, and whose sends alone it takes.
            var old = Peer;
            Peer = target;
            State = SocketState.Connected;
            if (old != null && old != target) old.Queue.Notify(PollEvents.None);
            return 0;
        }
        if (State == SocketState.Connected) return -Errno.EISCONN;
        if (State == SocketState.Listening) return -Errno.EINVAL;
        if (target.Dead || target.State != SocketState.Listening) return -Errno.ECONNREFUSED;
        if (target.Backlog.Count > target.BacklogMax)
        {
            FullListener = target;
            return -Errno.EAGAIN;
        }
        FullListener = null;
        var server = new UnixSocket(Type, Names)
        {
            State = SocketState.Connected,
            Peer = this,
            Name = target.Name,
            PeerCred = cred,
            SendBuffer = target.SendBuffer,
            ReceiveBuffer = target.ReceiveBuffer,
        };
        Peer = server;
        PeerCred = cred; // the listener's creator is the program itself
        State = SocketState.Connected;
        target.Backlog.Enqueue(server);
        target.Queue.Notify(PollEvents.Readable);
        Queue.Notify(PollEvents.Writable);
        return 0;
    }

    /// <summary>connect(AF_UNSPEC) of a datagram socket: no default peer any more.</summary>
    public long Disconnect()
    {
        if (ConnectionBased) return -Errno.EINVAL;
        var old = Peer;
        Peer = null;
        State = SocketState.Unconnected;
        old?.Queue.Notify(PollEvents.None);
        return 0;
    }

    /// <summary>Makes two connected sockets (socketpair).</summary>
    public static (UnixSocket, UnixSocket) Pair(int type, UnixNamespace names, (int, int, int) cred)
    {
        var a = new UnixSocket(type, names) { State = SocketState.Connected, PeerCred = cred };
        var b = new UnixSocket(type, names) { State = SocketState.Connected, PeerCred = cred, Peer = a };
        a.Peer = b;
        return (a, b);
    }

    /// <summary>Sends on a stream: as much as the send buffer takes; -EPIPE to a closed or shut reader.</summary>
    public long SendStream(ReadOnlySpan<byte> data)
    {
        if (State != SocketState.Connected || Peer is not { } other) return -Errno.ENOTCONN;
        if (ShutWrite || other.Dead || other.ShutRead) return -Errno.EPIPE;
        if (data.Length == 0) return 0;
        int room = SendBuffer - InFlight;
        if (room <= 0) return -Errno.EAGAIN;
        int n = Math.Min(room, data.Length);
        other.Enqueue(new UnixMessage { Data = data[..n].ToArray(), Sender = this }, this);
        return n;
    }

    /// <summary>Sends one datagram (SOCK_DGRAM to <paramref name="target"/> or the peer; SOCK_SEQPACKET to the peer).</summary>
    public long SendMessage(ReadOnlySpan<byte> data, UnixSocket? target)
    {
        UnixSocket other;
        if (Type == SocketFile.SOCK_SEQPACKET)
        {
            if (State != SocketState.Connected || Peer is null) return -Errno.ENOTCONN;
            if (ShutWrite || Peer.Dead || Peer.ShutRead) return -Errno.EPIPE;
            other = Peer;
        }
        else
        {
            if (ShutWrite) return -Errno.EPIPE;
            if (target == null)
            {
                if (Peer == null) return -Errno.ENOTCONN;
                target = Peer;
            }
            other = target;
            if (other.Type != Type) return -Errno.EPROTOTYPE;
            if (other.Dead)
            {
                if (other == Peer)
                {
                    // unix_dgram_sendmsg: the dead peer is dropped; this send fails, the next finds no peer.
                    Peer = null;
                    State = SocketState.Unconnected;
                }
                return -Errno.ECONNREFUSED;
            }
            if (other.Peer != null && other.Peer != this) return -Errno.EPERM;
            if (other.ShutRead) return -Errno.EPIPE;
        }
        if (data.Length > SendBuffer - 32) return -Errno.EMSGSIZE;
        if (InFlight + data.Length > SendBuffer) return -Errno.EAGAIN;
        if (Type == SocketFile.SOCK_DGRAM && other.Peer != this && other.Received.Count > MaxDatagramQueue) return -Errno.EAGAIN;
        other.Enqueue(new UnixMessage { Data = data.ToArray(), Sender = this, From = Name }, this);
        return data.Length;
    }

    private void Enqueue(UnixMessage m, UnixSocket sender)
    {
        Received.AddLast(m);
        ReceivedBytes += m.Length;
        sender.InFlight += m.Length;
        Queue.Notify(PollEvents.Readable);
    }

    /// <summary>Puts a message back as a checkpoint had it.</summary>
    public void Restore(UnixMessage m)
    {
        Received.AddLast(m);
        ReceivedBytes += m.Length;
        if (m.Sender != null) m.Sender.InFlight += m.Length;
    }

    /// <summary>The error and EOF checks of a read that found nothing: -errno, 0 at end, or -EAGAIN.</summary>
    private long Nothing()
    {
        if (Error != 0)
        {
            int e = Error;
            Error = 0;
            return -e;
        }
        return ShutRead ? 0 : -Errno.EAGAIN;
    }

    /// <summary>Reads a stream: across messages, up to the buffer; 0 at end of stream.</summary>
    public long ReceiveStream(Span<byte> buffer, bool peek)
    {
        if (State != SocketState.Connected) return -Errno.EINVAL;
        if (Received.Count == 0) return Nothing();
        int done = 0;
        var node = Received.First;
        while (node != null && done < buffer.Length)
        {
            var m = node.Value;
            int n = Math.Min(m.Length, buffer.Length - done);
            m.Data.AsSpan(m.Offset, n).CopyTo(buffer[done..]);
            done += n;
            var next = node.Next;
            if (!peek) Consume(node, n);
            node = next;
        }
        return done;
    }

    /// <summary>Reads one message (truncated to the buffer, the rest dropped unless peeking).</summary>
    public long ReceiveMessage(Span<byte> buffer, bool peek, out int fullLength, out byte[]? from)
    {
        fullLength = 0;
        from = null;
        if (Type == SocketFile.SOCK_SEQPACKET && State != SocketState.Connected) return -Errno.ENOTCONN;
        if (Received.First is not { } node) return Nothing();
        var m = node.Value;
        fullLength = m.Length;
        from = m.From;
        int n = Math.Min(m.Length, buffer.Length);
        m.Data.AsSpan(m.Offset, n).CopyTo(buffer);
        if (!peek) Consume(node, m.Length);
        return n;
    }

    private void Consume(LinkedListNode<UnixMessage> node, int n)
    {
        var m = node.Value;
        m.Offset += n;
        ReceivedBytes -= n;
        if (m.Length == 0) Received.Remove(node);
        if (m.Sender is { } s)
        {
            s.InFlight -= n;
            s.Queue.Notify(PollEvents.Writable);
        }
    }

    /// <summary>shutdown: this end's bits, and the matching ones of a connected peer.</summary>
    public long Shutdown(int how)
    {
        if (how is < SocketFile.SHUT_RD or > SocketFile.SHUT_RDWR) return -Errno.EINVAL;
        bool rd = how != SocketFile.SHUT_WR, wr = how != SocketFile.SHUT_RD;
        if (rd) ShutRead = true;
        if (wr) ShutWrite = true;
        Queue.Notify(PollEvents.None);
        if (ConnectionBased && Peer is { } other)
        {
            if (rd) other.ShutWrite = true;
            if (wr) other.ShutRead = true;
            other.Queue.Notify(PollEvents.None);
        }
        return 0;
    }

    /// <summary>The last file went (unix_release_sock).</summary>
    public void Close()
    {
        if (Dead) return;
        Dead = true;
        bool unread = Received.Count > 0;
        while (Received.First is { } node) Consume(node, node.Value.Length);
        Names.Release(this);
        if (State == SocketState.Listening)
        {
            // Connections never accepted: their clients see a reset.
            while (Backlog.Count > 0) Backlog.Dequeue().Close(embryo: true);
        }
        Close(embryo: false, unread);
    }

    private void Close(bool embryo, bool unread = false)
    {
        if (embryo)
        {
            Dead = true;
            unread = Received.Count > 0;
            while (Received.First is { } node) Consume(node, node.Value.Length);
        }
        if (Peer is { } other)
        {
            if (ConnectionBased)
            {
                other.ShutRead = other.ShutWrite = true;
                if (unread || embryo) other.Error = (int)Errno.ECONNRESET;
            }
            other.Queue.Notify(PollEvents.None);
        }
        Queue.Notify(PollEvents.None);
    }
}
