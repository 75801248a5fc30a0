using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// TCP (RFC 9293) for the domain's stack: demultiplexing, listeners, the connection table, timers, and the sockets.
/// Memory is bounded: at most <see cref="MaxConnections"/> connections (half-open, open and closing; a SYN past it is
/// dropped, connect() fails with ENOBUFS) plus at most <see cref="MaxTimeWait"/> in TIME_WAIT (past that a connection
/// ends without TIME_WAIT, as Linux's tcp_max_tw_buckets), each listener's SYN queue at its backlog
/// (16..4096), and all buffers together at <see cref="BufferLimit"/> bytes (a buffer that cannot grow takes no more:
/// the sender sees a full buffer, the receiver drops and the peer retransmits).
/// </summary>
internal sealed partial class TcpLayer(IIpLayer ip) : ITransportProtocol
{
    public const int MaxConnections = 16384, MaxTimeWait = 16384;
    private int _timeWait;

    /// <summary>Connections other than TIME_WAIT ones (which have a cap of their own and never block new ones).</summary>
    private int ActiveConnections => _conns.Count - _timeWait;

    public int TimeWaitCount => _timeWait;

    public bool TryAddTimeWait(TcpControlBlock c)
    {
        if (c.CountedTimeWait) return true;
        if (_timeWait >= MaxTimeWait) return false;
        _timeWait++;
        c.CountedTimeWait = true;
        return true;
    }
    public const long BufferLimit = 512L << 20;

    private readonly Dictionary<ConnKey, TcpControlBlock> _conns = [];
    private readonly Dictionary<int, TcpSocket> _sockets = [];
    private readonly TimerQueue _timers = new();
    private readonly byte[] _tx = new byte[65536 + 64];
    private int _nextKey = 1;
    private long _reportedDeadline = long.MaxValue;

    public IIpLayer Ip { get; } = ip;
    public byte Protocol => 6;
    public PortTable Ports { get; } = new();
    public IsnGenerator Isn { get; } = new();
    public BufferBudget Budget { get; } = new(BufferLimit);
    public TcpStats Stats { get; } = new();

    public int ConnectionCount => _conns.Count;
    public IEnumerable<TcpControlBlock> Connections => _conns.Values;

    private readonly record struct ConnKey(uint LocalAddress, ushort LocalPort, uint RemoteAddress, ushort RemotePort)
    {
        public static ConnKey Of(NetEndpoint local, NetEndpoint remote) => new(local.Address.Value, local.Port, remote.Address.Value, remote.Port);
    }

    public void Receive(IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> segment, byte tos)
    {
        if (!TcpHeader.ChecksumOk(segment, source, destination) || !TcpHeader.TryParse(segment, out var h))
        {
            Stats.BadSegments++;
            return;
        }
        Stats.SegmentsIn++;
        var data = segment[h.HeaderLength..];
        var local = new NetEndpoint(destination, h.DestinationPort);
        var remote = new NetEndpoint(source, h.SourcePort);
        if (_conns.TryGetValue(ConnKey.Of(local, remote), out var c))
        {
            // A new SYN for a connection in TIME_WAIT with a higher sequence number reopens it (as Linux does).
            if (c.State == TcpState.TimeWait && h.Flags == TcpFlags.Syn && Seq.Gt(h.SequenceNumber, c.RcvNxt))
            {
                c.Terminate(0);
                AfterChange(c);
            }
            else
            {
                c.OnSegment(h, data);
                AfterChange(c);
                return;
            }
        }
        var listener = FindListener(local, remote);
        if (listener != null)
        {
            if (h.Has(TcpFlags.Rst)) return;
            if (h.Has(TcpFlags.Ack))
            {
                if (!TryCookieAck(listener, local, remote, h, data)) SendReset(local, remote, h.AckNumber, 0, false);
                return;
            }
            if (h.Has(TcpFlags.Syn) && !h.Has(TcpFlags.Fin)) OnListenSyn(listener, local, remote, h);
            return;
        }
        if (h.Has(TcpFlags.Rst)) return;
        // No socket: RST (RFC 9293 §3.10.7.1).
        if (h.Has(TcpFlags.Ack)) SendReset(local, remote, h.AckNumber, 0, false);
        else
        {
            uint len = (uint)data.Length + (h.Has(TcpFlags.Syn) ? 1u : 0u) + (h.Has(TcpFlags.Fin) ? 1u : 0u);
            SendReset(local, remote, 0, h.SequenceNumber + len, true);
        }
        Stats.ResetsForClosedPorts++;
    }

    private TcpSocket? FindListener(NetEndpoint local, NetEndpoint remote)
    {
        TcpSocket? exact = null, any = null;
        int exactCount = 0, anyCount = 0;
        foreach (var b in Ports.On(local.Port))
        {
            if (b.Socket is not { IsListening: true } s) continue;
            if (b.Local.Address == local.Address) { exactCount++; exact ??= s; }
            else if (b.Local.Address.IsAny) { anyCount++; any ??= s; }
        }
        var pick = exact ?? any;
        int count = exact != null ? exactCount : anyCount;
        if (pick == null || count == 1) return pick;
        // SO_REUSEPORT: spread connections over the listeners by a hash of the peer.
        int want = (int)(Isn.Hash(((ulong)remote.Address.Value << 16) | remote.Port) % (uint)count);
        foreach (var b in Ports.On(local.Port))
        {
            if (b.Socket is not { IsListening: true } s) continue;
            if (exact != null ? b.Local.Address != local.Address : !b.Local.Address.IsAny) continue;
            if (want-- == 0) return s;
        }
        return pick;
    }

    private void OnListenSyn(TcpSocket listener, NetEndpoint local, NetEndpoint remote, in TcpHeader h)
    {
        if (listener.SynQueue.Count >= listener.SynQueueLimit && listener.SynQueue.Evictable is { } old)
        {
            old.Terminate(0);
            AfterChange(old);
            Stats.SynQueueEvictions++;
        }
        if (listener.SynQueue.Count >= listener.SynQueueLimit && listener.AcceptQueue.Count <= listener.Backlog
            && ActiveConnections < MaxConnections)
        {
            SendCookie(listener, local, remote, h);
            return;
        }
        if (listener.SynQueue.Count >= listener.SynQueueLimit || listener.AcceptQueue.Count > listener.Backlog
            || ActiveConnections >= MaxConnections)
        {
            Stats.SynsDropped++;
            return;
        }
        var c = new TcpControlBlock(this, _nextKey++, listener.Options.Clone(), local, remote)
        {
            Listener = listener,
            State = TcpState.SynReceived,
            Irs = h.SequenceNumber,
            RcvNxt = h.SequenceNumber + 1,
        };
        c.TakeSynOptions(h, weOffered: false);
        c.Iss = Isn.Next(local, remote, Ip.NowNs);
        c.TsOffset = Isn.Hash(c.Iss) | 1;
        c.SndUna = c.Iss;
        c.SndNxt = c.SndMax = c.Iss + 1;
        c.SndBufSeq = c.Iss + 1;
        c.Cc.Recover = c.Iss;
        c.LastRecvNs = Ip.NowNs;
        listener.SynQueue.Add(c);
        listener.Dirty = true;
        AddConnection(c);
        c.SendSyn(withAck: true);
        c.RtoDeadline = Ip.NowNs + c.Rtt.RtoNs;
        AfterChange(c);
    }

    /// <summary>
    /// SYN cookies (RFC 4987 §3.6) when the SYN queue is full: the SYN-ACK's sequence number encodes the connection,
    /// nothing is kept; the client's ACK rebuilds it (MSS only: no window scaling, SACK or timestamps for it, as
    /// Linux without timestamps).
    /// </summary>
    private void SendCookie(TcpSocket listener, NetEndpoint local, NetEndpoint remote, in TcpHeader h)
    {
        int ownMss = Math.Min(Ip.MtuFor(remote.Address) - 40, 65495);
        int mss = Math.Min(h.Mss > 0 ? h.Mss : 536, ownMss);
        uint cookie = Isn.Cookie(local, remote, h.SequenceNumber, mss, Ip.NowNs);
        var opt = TcpHeader.OutOptions.None;
        opt.Mss = ownMss;
        SendSegment(local, remote, cookie, h.SequenceNumber + 1, TcpFlags.Syn | TcpFlags.Ack,
            (ushort)Math.Min(listener.Options.ReceiveBuffer, 65535), opt, null, 0, 0, listener.Options.Tos, listener.Options.Ttl);
        listener.LastCookieNs = Ip.NowNs;
        listener.Dirty = true;
        Stats.SynCookiesSent++;
    }

    /// <summary>An ACK for a listener with no half-open connection: a valid SYN cookie makes the connection.</summary>
    private bool TryCookieAck(TcpSocket listener, NetEndpoint local, NetEndpoint remote, in TcpHeader h, ReadOnlySpan<byte> data)
    {
        if (listener.LastCookieNs == long.MinValue || Ip.NowNs - listener.LastCookieNs > 128_000_000_000L) return false;
        if (h.Has(TcpFlags.Syn) || h.Has(TcpFlags.Rst)) return false;
        int mss = Isn.CheckCookie(local, remote, h.SequenceNumber - 1, h.AckNumber - 1, Ip.NowNs);
        if (mss == 0 || listener.AcceptQueue.Count > listener.Backlog || ActiveConnections >= MaxConnections) return false;
        var c = new TcpControlBlock(this, _nextKey++, listener.Options.Clone(), local, remote)
        {
            Listener = listener,
            State = TcpState.SynReceived,
            Irs = h.SequenceNumber - 1,
            RcvNxt = h.SequenceNumber,
            Iss = h.AckNumber - 1,
            SndUna = h.AckNumber - 1,
            SndNxt = h.AckNumber,
            SndMax = h.AckNumber,
            SndBufSeq = h.AckNumber,
            PeerMss = mss,
        };
        c.UpdateSendMss();
        c.Cc.Init(c.SendMss);
        c.Cc.Recover = c.Iss;
        c.TsOffset = Isn.Hash(c.Iss) | 1;
        c.RcvAdvEdge = c.RcvNxt + (uint)Math.Min(listener.Options.ReceiveBuffer, 65535);
        c.LastRecvNs = Ip.NowNs;
        AddConnection(c);
        c.OnSegment(h, data);
        if (c.State == TcpState.SynReceived)
        {
            // The accept queue filled meanwhile: forget it (the client's retransmission may try again).
            c.Terminate(0);
        }
        else Stats.SynCookiesAccepted++;
        AfterChange(c);
        return true;
    }

    /// <summary>A passive open completed its handshake: into the listener's accept queue, unless that is full.</summary>
    public bool OfferToAcceptQueue(TcpControlBlock c)
    {
        var listener = c.Listener!;
        if (listener.Closed || !listener.IsListening || listener.AcceptQueue.Count > listener.Backlog)
        {
            Stats.AcceptQueueDrops++;
            return false;
        }
        listener.SynQueue.Remove(c);
        c.Listener = null;
        var s = new TcpSocket(this, Ip.NewSocketId(), c.Options) { Tcb = c, Connected = true };
        s.Binding = new PortBinding(c.Local, listener.Options.ReuseAddress, listener.Options.ReusePort) { Socket = s, Connection = c };
        Ports.Add(s.Binding);
        c.Binding = s.Binding;
        c.Owner = s;
        _sockets[s.Id] = s;
        listener.AcceptQueue.Add(s);
        listener.Dirty = true;
        Notify(listener);
        return true;
    }

    public long Connect(TcpSocket s, NetEndpoint remote)
    {
        if (remote.Address.IsAny) remote = remote with { Address = IPv4Address.Loopback };
        if (remote.Address.IsBroadcast || remote.Address.IsMulticast) return -TcpErrno.ENETUNREACH;
        IPv4Address source;
        if (s.Binding is { } b && !b.Local.Address.IsAny) source = b.Local.Address;
        else if (Ip.SourceFor(remote.Address) is { } src) source = src;
        else return -TcpErrno.ENETUNREACH;
        if (ActiveConnections >= MaxConnections) return -TcpErrno.ENOBUFS;
        if (s.Binding == null)
        {
            ushort port = 0;
            uint start = Isn.Hash(((ulong)remote.Address.Value << 16) | remote.Port);
            for (int i = 0; i < 64 && port == 0; i++)
            {
                ushort p = Ports.Ephemeral(source, start + (uint)i, s.Options.ReuseAddress);
                if (p == 0) break;
                if (!_conns.ContainsKey(ConnKey.Of(new NetEndpoint(source, p), remote))) port = p;
            }
            if (port == 0) return -TcpErrno.EADDRNOTAVAIL;
            s.Binding = new PortBinding(new NetEndpoint(IPv4Address.Any, port), s.Options.ReuseAddress, s.Options.ReusePort) { Socket = s };
            Ports.Add(s.Binding);
        }
        var local = new NetEndpoint(source, s.Binding.Local.Port);
        if (_conns.ContainsKey(ConnKey.Of(local, remote))) return -TcpErrno.EADDRNOTAVAIL;
        var c = new TcpControlBlock(this, _nextKey++, s.Options, local, remote)
        {
            Owner = s,
            Binding = s.Binding,
            State = TcpState.SynSent,
        };
        s.Binding.Connection = c;
        c.Iss = Isn.Next(local, remote, Ip.NowNs);
        c.TsOffset = Isn.Hash(c.Iss) | 1;
        c.SndUna = c.Iss;
        c.SndNxt = c.SndMax = c.Iss + 1;
        c.SndBufSeq = c.Iss + 1;
        c.Cc.Recover = c.Iss;
        c.RcvScale = TcpControlBlock.ScaleFor(s.Options.ReceiveBuffer);
        c.RttTiming = true;
        c.RttStartNs = Ip.NowNs;
        c.RttSeq = c.Iss;
        s.Tcb = c;
        s.Connecting = true;
        s.Connected = false;
        s.ReadShut = s.WriteShut = false;
        AddConnection(c);
        c.SendSyn(withAck: false);
        c.RtoDeadline = Ip.NowNs + c.Rtt.RtoNs;
        AfterChange(c);
        return -TcpErrno.EINPROGRESS;
    }

    private void AddConnection(TcpControlBlock c)
    {
        _conns[ConnKey.Of(c.Local, c.Remote)] = c;
        c.InTable = true;
        _timers.Live = _conns.Count;
    }

    /// <summary>
    /// After anything touched <paramref name="c"/>: reschedule its timers, wake its socket, and forget it when it is
    /// closed (its socket, if any, keeps it for reads of what is left and SO_ERROR).
    /// </summary>
    public void AfterChange(TcpControlBlock c)
    {
        c.Dirty = true;
        if (c.State == TcpState.Closed)
        {
            if (c.CountedTimeWait)
            {
                c.CountedTimeWait = false;
                _timeWait--;
            }
            if (c.InTable)
            {
                _conns.Remove(ConnKey.Of(c.Local, c.Remote));
                c.InTable = false;
                c.Removed = true;
                _timers.Live = _conns.Count;
            }
            if (c.Listener != null)
            {
                c.Listener.SynQueue.Remove(c);
                c.Listener.Dirty = true;
                c.Listener = null;
            }
            if (c.Owner == null && c.Binding != null)
            {
                if (c.Binding.Socket == null) Ports.Remove(c.Binding);
                c.Binding = null;
            }
        }
        else
        {
            _timers.Schedule(c);
            long d = c.NextDeadlineNs;
            if (d < _reportedDeadline)
            {
                _reportedDeadline = d;
                Ip.DeadlineChanged();
            }
        }
        if (c.WakeOwner)
        {
            c.WakeOwner = false;
            if (c.Owner != null) Notify(c.Owner);
        }
    }

    public void Notify(TcpSocket s)
    {
        s.Dirty = true;
        var r = s.Readiness();
        s.Queue.Notify(r == PollEvents.None ? PollEvents.None : r);
    }

    public void IcmpError(int type, int code, IPv4Address source, IPv4Address destination, ReadOnlySpan<byte> original, int nextHopMtu)
    {
        if (original.Length < 8) return;
        var local = new NetEndpoint(source, (ushort)(original[0] << 8 | original[1]));
        var remote = new NetEndpoint(destination, (ushort)(original[2] << 8 | original[3]));
        if (!_conns.TryGetValue(ConnKey.Of(local, remote), out var c)) return;
        uint seq = (uint)(original[4] << 24 | original[5] << 16 | original[6] << 8 | original[7]);
        if (!Seq.InRange(seq, c.SndUna, c.SndMax + 1)) return;
        c.Dirty = true;
        if (type == 3 && code == 4)
        {
            if (nextHopMtu >= 68) { c.PeerMss = Math.Min(c.PeerMss, nextHopMtu - 40); c.UpdateSendMss(); c.SndNxt = c.SndUna; c.Output(); }
        }
        else if (type == 3 && c.State == TcpState.SynSent && code is 2 or 3)
        {
            c.Terminate((int)TcpErrno.ECONNREFUSED);
        }
        else if (type == 3 && c.Owner != null && c.State == TcpState.SynSent)
        {
            c.Owner.SoError = (int)(code is 0 or 6 ? TcpErrno.ENETUNREACH : TcpErrno.EHOSTUNREACH);
            c.WakeOwner = true;
        }
        AfterChange(c);
    }

    public long NextDeadlineNs
    {
        get
        {
            long d = _timers.Peek();
            _reportedDeadline = d;
            return d;
        }
    }

    public void RunTimers(long nowNs)
    {
        for (int guard = 0; guard < 1_000_000; guard++)
        {
            var c = _timers.TakeDue(nowNs);
            if (c == null) break;
            if (c.NextDeadlineNs <= nowNs) c.RunTimers(nowNs);
            AfterChange(c);
        }
        _reportedDeadline = long.MaxValue;
    }

    public long CreateSocket(int id, out IInetSocket? socket)
    {
        var s = new TcpSocket(this, id, new TcpOptions());
        _sockets[id] = s;
        socket = s;
        return 0;
    }

    public IInetSocket? SocketById(int id) => _sockets.GetValueOrDefault(id);

    /// <summary>The program closed <paramref name="s"/>: a listener drops its queues, a connection closes gracefully or aborts.</summary>
    public void CloseSocket(TcpSocket s)
    {
        // Only a socket of this layer's current state: one left over from state a Load replaced does nothing.
        if (!_sockets.TryGetValue(s.Id, out var mine) || mine != s) return;
        _sockets.Remove(s.Id);
        if (s.IsListening) StopListening(s);
        var c = s.Tcb;
        var binding = s.Binding;
        s.Binding = null;
        if (c != null && c.State != TcpState.Closed)
        {
            c.Owner = null;
            c.UserClosed = true;
            if (binding != null) { binding.Socket = null; binding.Connection = c; c.Binding = binding; binding = null; }
            bool abort = c.Rcv.Readable > 0 || (s.Options.LingerOn && s.Options.LingerSeconds == 0);
            switch (c.State)
            {
                case TcpState.SynSent:
                    c.Terminate(0);
                    break;
                case TcpState.SynReceived when !abort:
                case TcpState.Established when !abort:
                case TcpState.CloseWait when !abort:
                    c.QueueFin();
                    c.Output();
                    break;
                case TcpState.FinWait2:
                    if (!abort) c.CloseDeadline = Ip.NowNs + TcpControlBlock.FinWait2TimeoutNs;
                    break;
            }
            if (abort && c.State is not (TcpState.Closed or TcpState.TimeWait))
            {
                SendReset(c.Local, c.Remote, c.SndNxt, c.RcvNxt, true);
                c.Terminate(0);
            }
            if (c.State == TcpState.FinWait2 && c.CloseDeadline == long.MaxValue) c.CloseDeadline = Ip.NowNs + TcpControlBlock.FinWait2TimeoutNs;
            c.Rcv.Ring.Consume(c.Rcv.Readable);
            AfterChange(c);
        }
        else if (c != null)
        {
            c.Owner = null;
            c.Rcv.Ring.Release();
        }
        if (binding != null) Ports.Remove(binding);
        s.Tcb = null;
        s.Queue.Notify(PollEvents.None);
    }

    /// <summary>A listener stops: half-open connections are dropped, queued ones reset (as Linux's inet_csk_listen_stop).</summary>
    public void StopListening(TcpSocket s)
    {
        foreach (var c in s.SynQueue.ToArray())
        {
            SendReset(c.Local, c.Remote, c.SndNxt, c.RcvNxt, true);
            c.Terminate(0);
            AfterChange(c);
        }
        s.SynQueue.Clear();
        foreach (var a in s.AcceptQueue.ToArray())
        {
            if (a.Tcb is { } t && t.State != TcpState.Closed)
            {
                SendReset(t.Local, t.Remote, t.SndNxt, t.RcvNxt, true);
                t.Terminate(0);
            }
            a.MarkClosed();
            CloseSocket(a);
        }
        s.AcceptQueue.Clear();
        s.IsListening = false;
        s.Dirty = true;
        Notify(s);
    }

    /// <summary>A RST not tied to a connection's state (closed port, bad ACK, abort).</summary>
    public void SendReset(NetEndpoint local, NetEndpoint remote, uint seq, uint ack, bool withAck)
    {
        SendSegment(local, remote, seq, ack, withAck ? TcpFlags.Rst | TcpFlags.Ack : TcpFlags.Rst, 0,
            TcpHeader.OutOptions.None, null, 0, 0, 0, 64);
        Stats.ResetsOut++;
    }

    /// <summary>Builds one segment (data copied from <paramref name="data"/> at <paramref name="offset"/>) and hands it to IPv4.</summary>
    public void SendSegment(NetEndpoint local, NetEndpoint remote, uint seq, uint ack, TcpFlags flags, ushort window,
        in TcpHeader.OutOptions opt, ByteRing? data, int offset, int length, byte tos, byte ttl)
    {
        var buf = _tx.AsSpan();
        int hl = TcpHeader.Write(buf, local.Port, remote.Port, seq, ack, flags, window, opt);
        if (length > 0) data!.Peek(offset, buf.Slice(hl, length));
        var seg = buf[..(hl + length)];
        TcpHeader.FinishChecksum(seg, local.Address, remote.Address);
        Stats.SegmentsOut++;
        if (Ip.Send(local.Address, remote.Address, 6, seg, tos, ttl, dontFragment: true) < 0) Stats.SendErrors++;
    }
}

/// <summary>Counters for tests, benchmarks and `remus list` (not part of the guest's state).</summary>
internal sealed class TcpStats
{
    public long SegmentsIn, SegmentsOut, BadSegments, Retransmits, ResetsOut, ResetsForClosedPorts, SynsDropped, AcceptQueueDrops, SendErrors, Timeouts, FastRecoveries, TailProbes, SynQueueEvictions, SynCookiesSent, SynCookiesAccepted;
}
