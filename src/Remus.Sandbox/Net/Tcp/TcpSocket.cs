using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// An AF_INET SOCK_STREAM socket: binding, listening (SYN and accept queues), connecting, and the byte stream of its
/// connection (<see cref="TcpControlBlock"/>), which lives on in the layer after <see cref="Close"/> until done.
/// </summary>
internal sealed partial class TcpSocket(TcpLayer layer, int id, TcpOptions options) : IInetSocket
{
    public const int MaxBacklog = 4096;
    public const int MsgOob = 1, MsgPeek = 2, MsgDontWait = 0x40, MsgWaitAll = 0x100, MsgNoSignal = 0x4000;

    public int Id { get; } = id;
    public int Type => 1;
    public WaitQueue Queue { get; } = new();
    public TcpOptions Options { get; set; } = options;
    public PortBinding? Binding { get; set; }
    public TcpControlBlock? Tcb { get; set; }

    public bool IsListening { get; set; }
    public int Backlog { get; set; }
    public List<TcpSocket> AcceptQueue { get; } = [];
    public SynQueue SynQueue { get; } = new();
    public int SynQueueLimit => Math.Clamp(Backlog, 16, MaxBacklog);

    /// <summary>connect() was called and its outcome not yet reported by a second connect (Linux SS_CONNECTING).</summary>
    public bool Connecting { get; set; }
    public bool Connected { get; set; }
    public bool ReadShut { get; set; }
    public bool WriteShut { get; set; }
    public int SoError { get; set; }
    public bool Closed { get; private set; }

    public bool Dirty = true;
    public byte[]? Cached;

    private TcpState ConnState => Tcb?.State ?? TcpState.Closed;

    public void Touch()
    {
        Dirty = true;
        if (Tcb != null) Tcb.Dirty = true;
    }

    public PollEvents Readiness()
    {
        if (IsListening) return AcceptQueue.Count > 0 ? PollEvents.Readable : PollEvents.None;
        var state = ConnState;
        bool dead = Tcb != null && state == TcpState.Closed;
        bool rcvShut = ReadShut || dead || Tcb is { FinReceived: true };
        bool sndShut = WriteShut || dead;
        var mask = PollEvents.None;
        if ((rcvShut && sndShut) || state == TcpState.Closed) mask |= PollEvents.Hup;
        if (rcvShut) mask |= PollEvents.Readable | PollEvents.RdHup;
        if (state is not (TcpState.SynSent or TcpState.SynReceived))
        {
            if (Tcb is { } t && t.Rcv.Readable > 0) mask |= PollEvents.Readable;
            if (sndShut || Tcb == null) mask |= PollEvents.Writable;
            else
            {
                int free = Tcb.Snd.Capacity - Tcb.Snd.Count;
                if (free > 0 && free >= Tcb.Snd.Count / 2) mask |= PollEvents.Writable;
            }
        }
        if (SoError != 0) mask |= PollEvents.Err;
        return mask;
    }

    public long Bind(NetEndpoint local)
    {
        Touch();
        if (Binding != null || Closed) return -TcpErrno.EINVAL;
        if (!local.Address.IsAny && !layer.Ip.IsLocal(local.Address)) return -TcpErrno.EADDRNOTAVAIL;
        if (local.Port == 0)
        {
            ushort p = layer.Ports.Ephemeral(local.Address, layer.Isn.Hash((ulong)Id), Options.ReuseAddress);
            if (p == 0) return -TcpErrno.EADDRINUSE;
            local = local with { Port = p };
        }
        else if (layer.Ports.Conflicts(local, Options.ReuseAddress, Options.ReusePort, false)) return -TcpErrno.EADDRINUSE;
        Binding = new PortBinding(local, Options.ReuseAddress, Options.ReusePort) { Socket = this };
        layer.Ports.Add(Binding);
        return 0;
    }

    public long Listen(int backlog)
    {
        Touch();
        if (Connecting || Connected || (Tcb != null && Tcb.State != TcpState.Closed)) return -TcpErrno.EINVAL;
        if (Binding == null)
        {
            long b = Bind(new NetEndpoint(IPv4Address.Any, 0));
            if (b < 0) return b;
        }
        if (!IsListening && layer.Ports.Conflicts(Binding!.Local, Options.ReuseAddress, Options.ReusePort, true, Binding))
            return -TcpErrno.EADDRINUSE;
        Tcb = null;
        IsListening = true;
        Backlog = backlog < 0 || backlog > MaxBacklog ? MaxBacklog : backlog;
        layer.Notify(this);
        return 0;
    }

    public long Connect(NetEndpoint remote, bool disconnect = false)
    {
        Touch();
        if (disconnect)
        {
            if (Tcb is { State: not TcpState.Closed } t)
            {
                if (t.Synchronized) layer.SendReset(t.Local, t.Remote, t.SndNxt, t.RcvNxt, true);
                t.Terminate(0);
                layer.AfterChange(t);
            }
            Tcb = null;
            Connecting = Connected = false;
            ReadShut = WriteShut = false;
            return 0;
        }
        if (IsListening) return -TcpErrno.EISCONN;
        if (Connecting)
        {
            switch (ConnState)
            {
                case TcpState.SynSent:
                case TcpState.SynReceived:
                    return -TcpErrno.EALREADY;
                case TcpState.Closed:
                    Connecting = false;
                    int e = TakeError();
                    return -(e != 0 ? e : TcpErrno.ECONNABORTED);
                default:
                    Connecting = false;
                    Connected = true;
                    return 0;
            }
        }
        if (Connected || (Tcb != null && Tcb.State != TcpState.Closed)) return -TcpErrno.EISCONN;
        return layer.Connect(this, remote);
    }

    public long Accept(out IInetSocket? accepted)
    {
        Touch();
        accepted = null;
        if (!IsListening) return -TcpErrno.EINVAL;
        if (AcceptQueue.Count == 0) return -TcpErrno.EAGAIN;
        var s = AcceptQueue[0];
        AcceptQueue.RemoveAt(0);
        s.Touch();
        accepted = s;
        return 0;
    }

    public long Send(ReadOnlySpan<byte> data, int flags, NetEndpoint? to)
    {
        Touch();
        if ((flags & MsgOob) != 0) return -TcpErrno.EOPNOTSUPP;
        if (SoError != 0) return -TakeError();
        if (WriteShut || IsListening) return -TcpErrno.EPIPE;
        var t = Tcb;
        if (t == null) return -TcpErrno.EPIPE;
        switch (t.State)
        {
            case TcpState.SynSent:
            case TcpState.SynReceived:
                return -TcpErrno.EAGAIN;
            case TcpState.Established:
            case TcpState.CloseWait:
                break;
            default:
                return -TcpErrno.EPIPE;
        }
        if (data.Length == 0) return 0;
        int n = t.Snd.Append(data);
        if (n == 0) return -TcpErrno.EAGAIN;
        t.Output();
        layer.AfterChange(t);
        return n;
    }

    public long Receive(Span<byte> buffer, int flags, out NetEndpoint from, out int fullLength)
    {
        Touch();
        from = Tcb?.Remote ?? default;
        fullLength = 0;
        if ((flags & MsgOob) != 0) return -TcpErrno.EINVAL;
        if (IsListening) return -TcpErrno.ENOTCONN;
        var t = Tcb;
        if (t != null && t.Rcv.Readable > 0)
        {
            if (buffer.Length == 0) return 0;
            bool peek = (flags & MsgPeek) != 0;
            int n = t.Rcv.Read(buffer, peek);
            fullLength = n;
            if (!peek)
            {
                t.MaybeWindowUpdate();
                layer.AfterChange(t);
            }
            return n;
        }
        if (SoError != 0) return -TakeError();
        if (ReadShut) return 0;
        if (t == null) return -TcpErrno.ENOTCONN;
        if (t.FinReceived || t.State == TcpState.Closed) return 0;
        return -TcpErrno.EAGAIN;
    }

    public long Shutdown(int how)
    {
        Touch();
        if (how is < 0 or > 2) return -TcpErrno.EINVAL;
        if (IsListening)
        {
            if (how != 1) layer.StopListening(this);
            return 0;
        }
        var t = Tcb;
        if (t == null || t.State == TcpState.Closed) return -TcpErrno.ENOTCONN;
        if (t.State == TcpState.SynSent)
        {
            t.Terminate(0);
            layer.AfterChange(t);
            Connecting = false;
            return 0;
        }
        if (how != 1) ReadShut = true;
        if (how != 0 && !WriteShut)
        {
            WriteShut = true;
            t.QueueFin();
            t.Output();
        }
        t.WakeOwner = true;
        layer.AfterChange(t);
        return 0;
    }

    public void Close()
    {
        if (Closed) return;
        Touch();
        Closed = true;
        layer.CloseSocket(this);
    }

    /// <summary>Marks the socket closed without the layer's bookkeeping (the layer does it).</summary>
    public void MarkClosed() => Closed = true;

    public NetEndpoint LocalEndpoint => Tcb?.Local ?? Binding?.Local ?? new NetEndpoint(IPv4Address.Any, 0);

    public NetEndpoint? RemoteEndpoint => Tcb is { } t && t.State is not (TcpState.Closed or TcpState.SynSent) ? t.Remote : null;

    public int TakeError()
    {
        Touch();
        int e = SoError;
        SoError = 0;
        if (e == 0 && Connecting && ConnState is TcpState.Established or TcpState.CloseWait)
        {
            Connecting = false;
            Connected = true;
        }
        return e;
    }

    public int ReadableBytes => Tcb?.Rcv.Readable ?? 0;

    public int UnsentBytes => Tcb?.Snd.Count ?? 0;
}
