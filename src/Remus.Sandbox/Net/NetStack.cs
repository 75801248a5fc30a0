using Remus.Sandbox.Net.Ipv4;
using Remus.Sandbox.Net.Sockets;
using Remus.Sandbox.Net.Udp;

namespace Remus.Sandbox.Net;

/// <summary>
/// The domain's TCP/IP stack (issue 9): lives in the VMM and in the checkpoint. Ethernet and ARP on the tap
/// (<see cref="Ethernet"/>, <see cref="Arp.ArpTable"/>), IPv4 with reassembly and the loopback
/// (<see cref="Ipv4Layer"/>), ICMP, UDP (<see cref="UdpLayer"/>) and TCP (<see cref="Tcp.TcpLayer"/>). Every member
/// runs under the kernel lock. Each call from outside (a frame, a timer run, a socket call through the
/// <see cref="StackSocket"/> it hands out) is bracketed by <see cref="Enter"/>/<see cref="Exit"/>: datagrams sent
/// to the loopback meanwhile are delivered as the outermost call leaves.
/// </summary>
internal sealed class NetStack
{
    private readonly Dictionary<int, StackSocket> _sockets = [];
    private readonly SnapshotScratch _scratch = new();

    /// <param name="nowNs">the guest's monotonic clock (ns)</param>
    /// <param name="spec">the domain's interface; null: loopback only (127.0.0.0/8 still works)</param>
    public NetStack(Func<long> nowNs, NetworkSpec? spec) : this(nowNs, spec, ip => new Tcp.TcpLayer(ip))
    {
    }

    /// <summary>With another TCP: tests of the IPv4 half use a stand-in.</summary>
    internal NetStack(Func<long> nowNs, NetworkSpec? spec, Func<IIpLayer, ITransportProtocol> tcp)
    {
        NowNs = nowNs;
        Spec = spec;
        Ip = new Ipv4Layer(nowNs, spec, Stats, () => DeadlineMoved?.Invoke());
        Udp = new UdpLayer(Ip, Stats);
        Tcp = tcp(Ip);
        Ip.Register(Udp);
        Ip.Register(Tcp);
    }

    public Func<long> NowNs { get; }
    public NetworkSpec? Spec { get; }

    /// <summary>Frames, bytes and drops by reason, for the VMM (not checkpointed).</summary>
    public NetStats Stats { get; } = new();

    internal Ipv4Layer Ip { get; }
    internal UdpLayer Udp { get; }
    internal ITransportProtocol Tcp { get; }

    /// <summary>Where outbound frames go (the tap, or output commit's hold); null: dropped (no interface yet).</summary>
    public void AttachLink(INetLink? link)
    {
        if (Ip.Ethernet is { } eth) eth.Link = link;
    }

    /// <summary>An inbound Ethernet frame from the tap.</summary>
    public void ReceiveFrame(ReadOnlySpan<byte> frame)
    {
        Enter();
        try { Ip.ReceiveFrame(frame); }
        finally { Exit(); }
    }

    /// <summary>The earliest timer deadline of the stack (guest monotonic ns); long.MaxValue when none.</summary>
    public long NextDeadlineNs => Ip.NextDeadlineNs;

    /// <summary>Runs every timer whose deadline has passed.</summary>
    public void RunTimers()
    {
        Enter();
        try { Ip.RunTimers(NowNs()); }
        finally { Exit(); }
    }

    /// <summary>Called (under the kernel lock) when <see cref="NextDeadlineNs"/> may have moved earlier: the timer thread looks again.</summary>
    public Action? DeadlineMoved { get; set; }

    private const int SockStream = 1, SockDgram = 2, SockRaw = 3, SockMax = 11;

    /// <summary>socket(AF_INET, type, protocol): 0 and the socket, or a negated errno (EPROTONOSUPPORT, ENOBUFS past the limit).</summary>
    public long CreateSocket(int type, int protocol, out IInetSocket? socket)
    {
        socket = null;
        type &= 0xF; // SOCK_NONBLOCK and SOCK_CLOEXEC are the syscall layer's
        ITransportProtocol transport;
        switch (type)
        {
            case SockStream when protocol is 0 or 6:
                transport = Tcp;
                break;
            case SockDgram when protocol is 0 or UdpLayer.ProtocolNumber:
                transport = Udp;
                break;
            case SockDgram when protocol == Icmp.Protocol:
                return -NetErrno.EACCES; // ping sockets: outside ping_group_range, as Linux's default
            case SockStream or SockDgram:
                return -NetErrno.EPROTONOSUPPORT;
            case SockRaw:
                return -NetErrno.EPERM; // no CAP_NET_RAW in a domain
            case < 1 or >= SockMax:
                return -NetErrno.EINVAL;
            default:
                return -NetErrno.ESOCKTNOSUPPORT;
        }
        if (_sockets.Count >= NetLimits.MaxSockets) return -NetErrno.ENOBUFS;
        Enter();
        try
        {
            long r = transport.CreateSocket(Ip.NewSocketId(), out var inner);
            if (r < 0 || inner is null) return r < 0 ? r : -NetErrno.ENOBUFS;
            socket = Wrap(inner);
            return 0;
        }
        finally { Exit(); }
    }

    /// <summary>Gratuitous ARP for the domain's address (after start, restore, migration, takeover).</summary>
    public void AnnounceAddress()
    {
        Enter();
        try { Ip.Arp?.Announce(); }
        finally { Exit(); }
    }

    /// <summary>The whole stack: sockets (by <see cref="IInetSocket.Id"/>), TCBs, queues, timers, ARP table, ISN, ports.</summary>
    public void Save(BinaryWriter w) => Save(w, full: false);

    /// <summary>As <see cref="Save(BinaryWriter)"/>; <paramref name="full"/> re-serializes every socket instead of using the caches (tests compare the two).</summary>
    internal void Save(BinaryWriter w, bool full) => StackSnapshot.Save(w, Ip, Udp, Tcp, _scratch, full);

    /// <summary>Replaces this (fresh) stack's state with a checkpoint's.</summary>
    public void Load(BinaryReader r)
    {
        _sockets.Clear();
        StackSnapshot.Load(r, Ip, Udp, Tcp);
        DeadlineMoved?.Invoke();
    }

    /// <summary>A socket restored by <see cref="Load"/>, for the kernel's open files.</summary>
    public IInetSocket? SocketById(int id)
    {
        if (_sockets.TryGetValue(id, out var s)) return s;
        var inner = Udp.SocketById(id) ?? Tcp.SocketById(id);
        return inner is null ? null : Wrap(inner);
    }

    internal StackSocket Wrap(IInetSocket inner)
    {
        if (inner is StackSocket wrapped) return wrapped;
        if (_sockets.TryGetValue(inner.Id, out var s) && s.Inner == inner) return s;
        s = new StackSocket(this, inner);
        _sockets[inner.Id] = s;
        return s;
    }

    internal void Forget(StackSocket s)
    {
        if (_sockets.TryGetValue(s.Id, out var known) && known == s) _sockets.Remove(s.Id);
    }

    /// <summary>A call into the stack begins (nested calls only count).</summary>
    internal void Enter() => Ip.Loopback.Enter();

    /// <summary>A call ends; the outermost delivers what was sent to the loopback meanwhile.</summary>
    internal void Exit() => Ip.Loopback.Exit();
}
