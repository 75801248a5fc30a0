namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// One TCP connection (RFC 9293's TCB): sequence state, buffers, options, congestion control and timers as deadlines
/// on the guest clock. It outlives its socket after close() until the FIN handshake and TIME_WAIT are done.
/// Input (segment arrival), Output (what to send) and Timers are the partial files beside this one.
/// </summary>
internal sealed partial class TcpControlBlock
{
    public const long TimeWaitNs = 60_000_000_000, FinWait2TimeoutNs = 60_000_000_000, DelayedAckNs = 40_000_000;
    public const int MaxRetransmits = 15, SynRetries = 6, SynAckRetries = 5;

    private readonly TcpLayer _layer;

    public TcpControlBlock(TcpLayer layer, int key, TcpOptions options, NetEndpoint local, NetEndpoint remote)
    {
        _layer = layer;
        Key = key;
        Options = options;
        Local = local;
        Remote = remote;
        Snd = new ByteRing(layer.Budget, options.SendBuffer);
        Rcv = new ReceiveBuffer(layer.Budget, options.ReceiveBuffer);
    }

    /// <summary>Names the connection in checkpoints.</summary>
    public int Key { get; }
    public TcpState State { get; set; } = TcpState.Closed;
    public NetEndpoint Local { get; set; }
    public NetEndpoint Remote { get; set; }
    public TcpOptions Options { get; set; }
    /// <summary>The program's socket; null once it closed it (or, for a passive open, before the handshake completes).</summary>
    public TcpSocket? Owner { get; set; }
    /// <summary>The listener a passive open came from, until it lands in that listener's accept queue.</summary>
    public TcpSocket? Listener { get; set; }
    public PortBinding? Binding { get; set; }

    // Bookkeeping for the layer: timer heap, removal, snapshot cache.
    public bool Removed, InHeap;
    public long QueuedDeadlineNs = long.MaxValue;
    public bool Dirty = true;
    public byte[]? Cached;
    public bool InTable;
    /// <summary>Counted in the layer's TIME_WAIT total.</summary>
    public bool CountedTimeWait;

    // Send sequence space.
    public uint Iss, SndUna, SndNxt, SndMax, SndWl1, SndWl2;
    public long SndWnd, MaxSndWnd;
    public int SndScale;
    public ByteRing Snd;
    /// <summary>Sequence number of the send buffer's first byte.</summary>
    public uint SndBufSeq;
    /// <summary>The program shut down writing: a FIN follows the send buffer's last byte.</summary>
    public bool FinQueued;
    public uint FinSeq => SndBufSeq + (uint)Snd.Count;
    public bool FinSent => FinQueued && Seq.Gt(SndMax, FinSeq);

    // Receive sequence space.
    public uint Irs, RcvNxt, RcvAdvEdge;
    public int RcvScale;
    public ReceiveBuffer Rcv;
    public bool FinReceived;
    public bool HasOutOfOrderFin;
    public uint OutOfOrderFinSeq;

    // Negotiated options.
    public int PeerMss = 536, SendMss = 536;
    public bool Timestamps, SackOk;
    public uint TsRecent;
    public bool UserClosed;

    public readonly Congestion Cc = new();
    public readonly RttEstimator Rtt = new();
    public bool RttTiming;
    public uint RttSeq;
    public long RttStartNs;
    public readonly SeqRangeSet Sacked = new();

    // Timers (guest monotonic ns; long.MaxValue: off).
    public long RtoDeadline = long.MaxValue, PersistDeadline = long.MaxValue, DelAckDeadline = long.MaxValue,
        KeepDeadline = long.MaxValue, CloseDeadline = long.MaxValue;
    public int Retransmits, KeepProbes, PersistBackoff, AckPending;
    public bool AckNow;
    public long LastRecvNs, LastSendNs, TotalRetransmits;

    /// <summary>Readiness bits that may have changed during the current operation (the layer notifies the socket).</summary>
    public bool WakeOwner;

    public long NextDeadlineNs =>
        Math.Min(Math.Min(Math.Min(RtoDeadline, ProbeDeadline), PersistDeadline), Math.Min(Math.Min(DelAckDeadline, KeepDeadline), CloseDeadline));

    /// <summary>Tail loss probe (RFC 8985 §7): a probe segment before the RTO when ACKs stop; one per flight.</summary>
    public long ProbeDeadline = long.MaxValue;
    public bool ProbeSent;

    public bool Synchronized => State is not (TcpState.Closed or TcpState.SynSent or TcpState.Listen);

    /// <summary>Bytes in flight (sent, unacknowledged, not SACKed is not subtracted: NewReno's FlightSize).</summary>
    public long Flight => SndMax - SndUna;

    private long Now => _layer.Ip.NowNs;
    /// <summary>TSval: the guest clock in ms plus a per-connection offset (as Linux, RFC 7323 §5.4).</summary>
    private uint TsNow => (uint)(Now / 1_000_000) + TsOffset;
    public uint TsOffset;

    /// <summary>Our MSS to advertise: the path MTU less 40, as Linux (1460 on the tap).</summary>
    public int OwnMss()
    {
        int mss = Math.Min(_layer.Ip.MtuFor(Remote.Address) - 40, 65495);
        if (Options.UserMss > 0) mss = Math.Min(mss, Options.UserMss);
        return Math.Max(mss, 88);
    }

    /// <summary>The window scale we offer: enough for the receive buffer (Linux offers 7 for its 6 MiB maximum).</summary>
    public static int ScaleFor(int bufferBytes)
    {
        int s = 0;
        while (s < 14 && (65535L << s) < bufferBytes) s++;
        return Math.Max(s, 7);
    }

    /// <summary>Takes the options of the peer's SYN (or SYN-ACK) and sizes segments.</summary>
    public void TakeSynOptions(in TcpHeader h, bool weOffered)
    {
        PeerMss = h.Mss > 0 ? h.Mss : 536;
        if (h.WindowScale >= 0 && (weOffered || true))
        {
            SndScale = h.WindowScale;
            if (!weOffered) RcvScale = ScaleFor(Options.ReceiveBuffer);
        }
        else
        {
            SndScale = 0;
            RcvScale = 0;
        }
        Timestamps = h.HasTimestamp;
        if (Timestamps) TsRecent = h.TsVal;
        SackOk = h.SackPermitted;
        UpdateSendMss();
        Cc.Init(SendMss);
    }

    public void UpdateSendMss()
    {
        int mss = Math.Min(PeerMss, OwnMss());
        if (Timestamps) mss -= 12;
        SendMss = Math.Max(mss, 64);
    }

    /// <summary>The connection is over (reset, refused, timed out, or closed cleanly): timers off, send data dropped.</summary>
    public void Terminate(int error)
    {
        if (error != 0 && Owner != null) Owner.SoError = error;
        State = TcpState.Closed;
        RtoDeadline = ProbeDeadline = PersistDeadline = DelAckDeadline = KeepDeadline = CloseDeadline = long.MaxValue;
        Snd.Consume(Snd.Count);
        Snd.Release();
        if (Owner == null) Rcv.Ring.Release();
        WakeOwner = true;
    }

    /// <summary>The program shut down writing: queue a FIN and move on (RFC 9293 CLOSE call).</summary>
    public void QueueFin()
    {
        if (FinQueued) return;
        switch (State)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                FinQueued = true;
                State = TcpState.FinWait1;
                break;
            case TcpState.CloseWait:
                FinQueued = true;
                State = TcpState.LastAck;
                break;
        }
        WakeOwner = true;
    }

    /// <summary>Starts a keepalive countdown when SO_KEEPALIVE is on.</summary>
    public void ArmKeepalive()
    {
        KeepDeadline = Options.KeepAlive && State is TcpState.Established or TcpState.CloseWait
            ? Now + Options.KeepIdleSeconds * 1_000_000_000L
            : long.MaxValue;
    }
}
