using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net.Udp;

/// <summary>
/// A UDP socket (Linux's udp.c semantics): bind with the port table's rules, connect/disconnect, one datagram per
/// send/receive with its source, a receive queue bounded by SO_RCVBUF (each datagram charged its bytes plus
/// <see cref="NetLimits.DatagramOverhead"/>, as Linux charges skb truesize), SO_ERROR from ICMP errors on a connected
/// socket, and the options a program sets read back by getsockopt. Never blocks. Its saved state is cached
/// (<see cref="SnapshotCache"/>): every change to a saved field calls <see cref="Changed"/>.
/// </summary>
internal sealed class UdpSocket : IInetSocket, ISnapshotState
{
    public const int MsgPeek = 0x2;
    public const int SolSocket = 1, SolIp = 0, SolTcp = 6, SolUdp = 17;
    public const int SoReuseAddr = 2, SoType = 3, SoError = 4, SoBroadcast = 6, SoSndBuf = 7, SoRcvBuf = 8,
        SoLinger = 13, SoReusePort = 15, SoRcvLowat = 18, SoSndLowat = 19, SoRcvTimeo = 20, SoSndTimeo = 21,
        SoAcceptConn = 30, SoSndBufForce = 32, SoRcvBufForce = 33, SoProtocol = 38, SoDomain = 39;
    public const int IpTos = 1, IpTtl = 2, IpHdrIncl = 3, IpOptions = 4, IpMtuDiscover = 10, IpMtu = 14;
    public const int PmtuDiscDont = 0, PmtuDiscWant = 1, PmtuDiscDo = 2, PmtuDiscProbe = 3;

    /// <summary>Options stored and read back, with no effect on this stack (level &lt;&lt; 16 | name).</summary>
    private static readonly int[] PlainOptions =
    [
        (SolSocket << 16) | 1,  // SO_DEBUG
        (SolSocket << 16) | 5,  // SO_DONTROUTE
        (SolSocket << 16) | 9,  // SO_KEEPALIVE
        (SolSocket << 16) | 10, // SO_OOBINLINE
        (SolSocket << 16) | 11, // SO_NO_CHECK
        (SolSocket << 16) | 12, // SO_PRIORITY
        (SolSocket << 16) | 16, // SO_PASSCRED
        (SolSocket << 16) | 29, // SO_TIMESTAMP
        (SolSocket << 16) | 35, // SO_TIMESTAMPNS
        (SolSocket << 16) | 36, // SO_MARK
        (SolSocket << 16) | 40, // SO_RXQ_OVFL
        (SolIp << 16) | 8,      // IP_PKTINFO
        (SolIp << 16) | 11,     // IP_RECVERR
        (SolIp << 16) | 12,     // IP_RECVTTL
        (SolIp << 16) | 13,     // IP_RECVTOS
        (SolIp << 16) | 15,     // IP_FREEBIND
        (SolIp << 16) | 20,     // IP_RECVORIGDSTADDR
        (SolIp << 16) | 24,     // IP_BIND_ADDRESS_NO_PORT
        (SolIp << 16) | 33,     // IP_MULTICAST_TTL
        (SolIp << 16) | 34,     // IP_MULTICAST_LOOP
    ];

    private readonly UdpLayer _layer;
    private readonly Queue<(NetEndpoint From, PacketBuffer Data)> _received = new();
    private readonly SortedDictionary<int, int> _plain = [];
    private int _receivedBytes;
    private readonly byte[] _linger = new byte[8];
    private readonly byte[] _rcvTimeo = new byte[16], _sndTimeo = new byte[16];

    public UdpSocket(UdpLayer layer, int id)
    {
        _layer = layer;
        Id = id;
    }

    public int Id { get; }
    public int Type => 2;
    public WaitQueue Queue { get; } = new();
    public SnapshotCache Snapshot { get; } = new();

    public NetEndpoint LocalEndpoint { get; private set; }
    public NetEndpoint? RemoteEndpoint { get; private set; }

    /// <summary>bind() named the address (SOCK_BINDADDR_LOCK) / the port (SOCK_BINDPORT_LOCK): disconnect keeps them.</summary>
    internal bool AddressLocked { get; private set; }
    internal bool PortLocked { get; private set; }

    /// <summary>When it entered the port table (the latest bound of equals receives unicast, as Linux).</summary>
    internal long BindSequence { get; set; }

    internal bool ReuseAddress { get; private set; }
    internal bool ReusePort { get; private set; }
    internal bool Broadcast { get; private set; }
    internal bool RecvErr => _plain.TryGetValue((SolIp << 16) | 11, out int v) && v != 0;
    internal byte Tos { get; private set; }
    internal int Ttl { get; private set; } = -1;
    internal int PmtuDiscover { get; private set; } = PmtuDiscWant;
    internal int ReceiveBuffer { get; private set; } = NetLimits.DefaultBuffer;
    internal int SendBuffer { get; private set; } = NetLimits.DefaultBuffer;
    internal int PendingError { get; private set; }
    internal int ShutdownFlags { get; private set; } // 1 receive, 2 send
    internal bool Closed { get; private set; }

    public int ReadableBytes => _received.TryPeek(out var d) ? d.Data.Length : 0;
    public int UnsentBytes => 0;
    public int QueuedDatagrams => _received.Count;
    public int QueuedBytesCharged => _receivedBytes;

    private void Changed()
    {
        Snapshot.MarkDirty();
        _layer.SectionDirty = true;
    }

    public PollEvents Readiness()
    {
        var ev = PollEvents.Writable | PollEvents.WrBand;
        if (_received.Count > 0) ev |= PollEvents.Readable;
        if (PendingError != 0) ev |= PollEvents.Err;
        if ((ShutdownFlags & 1) != 0) ev |= PollEvents.RdHup | PollEvents.Readable;
        if (ShutdownFlags == 3) ev |= PollEvents.Hup;
        return ev;
    }

    public long Bind(NetEndpoint local)
    {
        if (LocalEndpoint.Port != 0 || RemoteEndpoint is not null) return -NetErrno.EINVAL;
        var a = local.Address;
        if (!a.IsAny && !_layer.Ip.IsLocal(a) && !_layer.Ip.IsBroadcast(a) && !a.IsMulticast) return -NetErrno.EADDRNOTAVAIL;
        long r = _layer.Bind(this, local);
        if (r < 0) return r;
        AddressLocked = !a.IsAny;
        PortLocked = local.Port != 0;
        Changed();
        return 0;
    }

    /// <summary>The port table placed the socket (or took it out: port 0).</summary>
    internal void SetLocal(NetEndpoint local)
    {
        LocalEndpoint = local;
        Changed();
    }

    public long Listen(int backlog) => -NetErrno.EOPNOTSUPP;

    public long Accept(out IInetSocket? accepted)
    {
        accepted = null;
        return -NetErrno.EOPNOTSUPP;
    }

    public long Connect(NetEndpoint remote, bool disconnect = false)
    {
        if (disconnect)
        {
            RemoteEndpoint = null;
            if (!PortLocked) _layer.Unbind(this);
            else if (!AddressLocked) _layer.Rebind(this, new NetEndpoint(IPv4Address.Any, LocalEndpoint.Port));
            Changed();
            return 0;
        }
        var destination = Ipv4.Ipv4Layer.LocalIfAny(remote.Address, LocalEndpoint.Address);
        if (_layer.Ip.IsBroadcast(destination) && !Broadcast) return -NetErrno.EACCES;
        if (_layer.Ip.SourceFor(destination) is not { } source) return -NetErrno.ENETUNREACH;
        if (LocalEndpoint.Address.IsLoopback && !_layer.Ip.IsLocal(destination)) return -NetErrno.EINVAL; // as Linux's route lookup
        if (LocalEndpoint.Port == 0 && _layer.Bind(this, default) < 0) return -NetErrno.EAGAIN;
        if (LocalEndpoint.Address.IsAny && !destination.IsBroadcast && !destination.IsMulticast)
            _layer.Rebind(this, new NetEndpoint(source, LocalEndpoint.Port));
        RemoteEndpoint = new NetEndpoint(destination, remote.Port);
        Changed();
        return 0;
    }

    public long Send(ReadOnlySpan<byte> data, int flags, NetEndpoint? to)
    {
        if (PendingError != 0) return -TakeError();
        if ((ShutdownFlags & 2) != 0) return -NetErrno.EPIPE;
        NetEndpoint destination;
        if (to is { } t)
        {
            if (t.Port == 0) return -NetErrno.EINVAL;
            destination = new NetEndpoint(Ipv4.Ipv4Layer.LocalIfAny(t.Address, LocalEndpoint.Address), t.Port);
        }
        else if (RemoteEndpoint is { } peer) destination = peer;
        else return -NetErrno.EDESTADDRREQ;
        if (data.Length > 65535 - 8 - 20) return -NetErrno.EMSGSIZE;
        if (_layer.Ip.IsBroadcast(destination.Address) && !Broadcast) return -NetErrno.EACCES;
        if (LocalEndpoint.Port == 0 && _layer.Bind(this, default) < 0) return -NetErrno.EAGAIN;
        long r = _layer.SendDatagram(this, destination, data);
        return r < 0 ? r : data.Length;
    }

    /// <summary>A datagram for this socket (the layer chose it): queued unless the receive buffer is over.</summary>
    internal void Deliver(NetEndpoint from, ReadOnlySpan<byte> payload, NetStats stats)
    {
        int charge = payload.Length + NetLimits.DatagramOverhead;
        if (_receivedBytes > ReceiveBuffer || !_layer.Charge(charge))
        {
            stats.Drop(NetDrop.ReceiveBufferFull);
            return;
        }
        _received.Enqueue((from, PacketBuffer.Copy(payload)));
        _receivedBytes += charge;
        Changed();
        Queue.Notify(PollEvents.Readable);
    }

    public long Receive(Span<byte> buffer, int flags, out NetEndpoint from, out int fullLength)
    {
        from = default;
        fullLength = 0;
        if (PendingError != 0) return -TakeError();
        if (!_received.TryPeek(out var d)) return (ShutdownFlags & 1) != 0 ? 0 : -NetErrno.EAGAIN;
        int n = Math.Min(buffer.Length, d.Data.Length);
        d.Data.Span[..n].CopyTo(buffer);
        from = d.From;
        fullLength = d.Data.Length;
        if ((flags & MsgPeek) == 0)
        {
            _received.Dequeue();
            _receivedBytes -= d.Data.Length + NetLimits.DatagramOverhead;
            _layer.Uncharge(d.Data.Length + NetLimits.DatagramOverhead);
            d.Data.Return();
            Changed();
        }
        return n;
    }

    /// <summary>An ICMP error for what this socket sent: reported (SO_ERROR) when hard and connected, or always with IP_RECVERR.</summary>
    internal void IcmpError(int errno, bool fatal)
    {
        if (!RecvErr && (!fatal || RemoteEndpoint is null)) return;
        PendingError = errno;
        Changed();
        Queue.Notify(PollEvents.Err);
    }

    public long Shutdown(int how)
    {
        if (how is < 0 or > 2) return -NetErrno.EINVAL;
        ShutdownFlags |= how + 1;
        Changed();
        Queue.Notify(PollEvents.None);
        return RemoteEndpoint is null ? -NetErrno.ENOTCONN : 0;
    }

    public void Close()
    {
        if (Closed) return;
        Closed = true;
        while (_received.TryDequeue(out var d)) d.Data.Return();
        _layer.Uncharge(_receivedBytes);
        _receivedBytes = 0;
        _layer.Remove(this);
        Queue.Notify(PollEvents.None);
    }

    public int TakeError()
    {
        int e = PendingError;
        if (e != 0)
        {
            PendingError = 0;
            Changed();
        }
        return e;
    }

    // ---- options ----

    private static bool ReadInt(ReadOnlySpan<byte> value, out int v, bool byteOk = false)
    {
        v = 0;
        if (value.Length >= 4) v = BinaryPrimitives.ReadInt32LittleEndian(value);
        else if (byteOk && value.Length >= 1) v = value[0];
        else return false;
        return true;
    }

    private static long PutInt(Span<byte> value, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        int n = Math.Min(4, value.Length);
        b[..n].CopyTo(value);
        return n;
    }

    private static long PutBytes(Span<byte> value, ReadOnlySpan<byte> bytes)
    {
        int n = Math.Min(bytes.Length, value.Length);
        bytes[..n].CopyTo(value);
        return n;
    }

    private static int Buffer(int v, int min) => Math.Max((int)Math.Min((uint)v, (uint)NetLimits.MaxBuffer) * 2, min);

    public long SetOption(int level, int name, ReadOnlySpan<byte> value)
    {
        long r = SetOptionCore(level, name, value);
        if (r == 0) Changed();
        return r;
    }

    private long SetOptionCore(int level, int name, ReadOnlySpan<byte> value)
    {
        int key = (level << 16) | name;
        if (level == SolSocket)
        {
            switch (name)
            {
                case SoLinger:
                    if (value.Length < 8) return -NetErrno.EINVAL;
                    value[..8].CopyTo(_linger);
                    return 0;
                case SoRcvTimeo or SoSndTimeo:
                    if (value.Length < 16) return -NetErrno.EINVAL;
                    value[..16].CopyTo(name == SoRcvTimeo ? _rcvTimeo : _sndTimeo);
                    return 0;
            }
            if (!ReadInt(value, out int v)) return -NetErrno.EINVAL;
            switch (name)
            {
                case SoReuseAddr: ReuseAddress = v != 0; return 0;
                case SoReusePort: ReusePort = v != 0; return 0;
                case SoBroadcast: Broadcast = v != 0; return 0;
                case SoRcvBuf or SoRcvBufForce: ReceiveBuffer = Buffer(v, NetLimits.MinRcvBuf); return 0;
                case SoSndBuf or SoSndBufForce: SendBuffer = Buffer(v, NetLimits.MinSndBuf); return 0;
                case SoRcvLowat: _plain[key] = Math.Max(v, 1); return 0;
                case SoType or SoError or SoProtocol or SoDomain or SoAcceptConn or SoSndLowat: return -NetErrno.ENOPROTOOPT;
            }
            if (Array.IndexOf(PlainOptions, key) < 0) return -NetErrno.ENOPROTOOPT;
            _plain[key] = v;
            return 0;
        }
        if (level == SolIp)
        {
            switch (name)
            {
                case IpOptions: return value.Length == 0 ? 0 : -NetErrno.EINVAL;
                case IpHdrIncl: return -NetErrno.ENOPROTOOPT;
            }
            if (!ReadInt(value, out int v, byteOk: true)) return -NetErrno.EINVAL;
            switch (name)
            {
                case IpTos: Tos = (byte)v; return 0;
                case IpTtl:
                    if (v == -1) { Ttl = -1; return 0; }
                    if (v is < 1 or > 255) return -NetErrno.EINVAL;
                    Ttl = v;
                    return 0;
                case IpMtuDiscover:
                    if (v is < PmtuDiscDont or > 5) return -NetErrno.EINVAL;
                    PmtuDiscover = v;
                    return 0;
                case IpMtu: return -NetErrno.ENOPROTOOPT;
            }
            if (Array.IndexOf(PlainOptions, key) < 0) return -NetErrno.ENOPROTOOPT;
            _plain[key] = v;
            return 0;
        }
        return -NetErrno.ENOPROTOOPT;
    }

    public long GetOption(int level, int name, Span<byte> value)
    {
        int key = (level << 16) | name;
        if (level == SolSocket)
        {
            return name switch
            {
                SoType => PutInt(value, 2),
                SoProtocol => PutInt(value, 17),
                SoDomain => PutInt(value, 2),
                SoAcceptConn => PutInt(value, 0),
                SoError => PutInt(value, TakeError()),
                SoReuseAddr => PutInt(value, ReuseAddress ? 1 : 0),
                SoReusePort => PutInt(value, ReusePort ? 1 : 0),
                SoBroadcast => PutInt(value, Broadcast ? 1 : 0),
                SoRcvBuf => PutInt(value, ReceiveBuffer),
                SoSndBuf => PutInt(value, SendBuffer),
                SoRcvLowat => PutInt(value, _plain.GetValueOrDefault(key, 1)),
                SoSndLowat => PutInt(value, 1),
                SoLinger => PutBytes(value, _linger),
                SoRcvTimeo => PutBytes(value, _rcvTimeo),
                SoSndTimeo => PutBytes(value, _sndTimeo),
                _ when Array.IndexOf(PlainOptions, key) >= 0 => PutInt(value, _plain.GetValueOrDefault(key)),
                _ => -NetErrno.ENOPROTOOPT,
            };
        }
        if (level == SolIp)
        {
            return name switch
            {
                IpTos => PutInt(value, Tos),
                IpTtl => PutInt(value, Ttl < 0 ? 64 : Ttl),
                IpMtuDiscover => PutInt(value, PmtuDiscover),
                IpMtu => RemoteEndpoint is { } peer ? PutInt(value, _layer.Ip.MtuFor(peer.Address)) : -NetErrno.ENOTCONN,
                IpOptions => 0,
                33 or 34 => PutInt(value, _plain.GetValueOrDefault(key, 1)), // IP_MULTICAST_TTL, IP_MULTICAST_LOOP default 1
                _ when Array.IndexOf(PlainOptions, key) >= 0 => PutInt(value, _plain.GetValueOrDefault(key)),
                _ => -NetErrno.ENOPROTOOPT,
            };
        }
        return -NetErrno.ENOPROTOOPT;
    }

    // ---- snapshot ----

    public void SaveState(BinaryWriter w)
    {
        w.Write(LocalEndpoint.Address.Value);
        w.Write(LocalEndpoint.Port);
        w.Write(RemoteEndpoint is not null);
        if (RemoteEndpoint is { } r)
        {
            w.Write(r.Address.Value);
            w.Write(r.Port);
        }
        w.Write(AddressLocked);
        w.Write(PortLocked);
        w.Write(BindSequence);
        w.Write(ReuseAddress);
        w.Write(ReusePort);
        w.Write(Broadcast);
        w.Write(Tos);
        w.Write(Ttl);
        w.Write(PmtuDiscover);
        w.Write(ReceiveBuffer);
        w.Write(SendBuffer);
        w.Write(PendingError);
        w.Write(ShutdownFlags);
        w.Write(_linger);
        w.Write(_rcvTimeo);
        w.Write(_sndTimeo);
        w.Write(_plain.Count);
        foreach (var (k, v) in _plain)
        {
            w.Write(k);
            w.Write(v);
        }
        w.Write(_received.Count);
        foreach (var (from, data) in _received)
        {
            w.Write(from.Address.Value);
            w.Write(from.Port);
            data.Save(w);
        }
    }

    internal void LoadState(BinaryReader r)
    {
        LocalEndpoint = new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16());
        RemoteEndpoint = r.ReadBoolean() ? new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16()) : null;
        AddressLocked = r.ReadBoolean();
        PortLocked = r.ReadBoolean();
        BindSequence = r.ReadInt64();
        ReuseAddress = r.ReadBoolean();
        ReusePort = r.ReadBoolean();
        Broadcast = r.ReadBoolean();
        Tos = r.ReadByte();
        Ttl = r.ReadInt32();
        PmtuDiscover = r.ReadInt32();
        ReceiveBuffer = r.ReadInt32();
        SendBuffer = r.ReadInt32();
        PendingError = r.ReadInt32();
        ShutdownFlags = r.ReadInt32();
        r.BaseStream.ReadExactly(_linger);
        r.BaseStream.ReadExactly(_rcvTimeo);
        r.BaseStream.ReadExactly(_sndTimeo);
        int plain = r.ReadInt32();
        if (plain is < 0 or > 64) throw new InvalidDataException("stack snapshot: bad UDP options");
        for (int i = 0; i < plain; i++) _plain[r.ReadInt32()] = r.ReadInt32();
        int n = r.ReadInt32();
        if (n < 0) throw new InvalidDataException("stack snapshot: bad UDP queue");
        for (int i = 0; i < n; i++)
        {
            var from = new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16());
            var data = PacketBuffer.Load(r);
            _received.Enqueue((from, data));
            _receivedBytes += data.Length + NetLimits.DatagramOverhead;
            _layer.Charge(data.Length + NetLimits.DatagramOverhead, force: true);
        }
    }
}
