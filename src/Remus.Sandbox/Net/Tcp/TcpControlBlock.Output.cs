namespace Remus.Sandbox.Net.Tcp;

/// <summary>What to send: data within the congestion and peer windows (Nagle, cork, SACK-skipping), FIN, ACKs.</summary>
internal sealed partial class TcpControlBlock
{
    private bool CanSendData => State is TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck;

    /// <summary>Sends what the windows allow, then an ACK if one is owed and nothing carried it.</summary>
    public void Output()
    {
        if (CanSendData) SendQueued();
        if (AckNow && State is not (TcpState.Closed or TcpState.SynSent)) SendAck();
    }

    /// <summary>Data per segment now: SendMss less the SACK blocks this segment will carry (as Linux's tcp_current_mss).</summary>
    private int CurrentMss =>
        SackOk && Rcv.OutOfOrder.Count > 0 ? SendMss - 4 - 8 * Math.Min(Rcv.OutOfOrder.Count, Timestamps ? 3 : 4) : SendMss;

    private void SendQueued()
    {
        int mss = CurrentMss;
        if (Cc.InRecovery && SackOk && SndNxt == SndMax) SendInSackRecovery(mss);
        for (int guard = 0; guard < 4096; guard++)
        {
            uint dataEnd = SndBufSeq + (uint)Snd.Count;
            // Retransmitting (after a timeout): skip what the peer SACKed.
            if (Seq.Lt(SndNxt, SndMax) && Sacked.Count > 0)
            {
                uint skip = Sacked.SkipCovered(SndNxt);
                if (skip != SndNxt) { SndNxt = Seq.Min(skip, SndMax); continue; }
            }
            // Limited transmit (RFC 3042): the first two duplicate ACKs each let one new segment out.
            long cwnd = Cc.InRecovery ? Cc.Cwnd : Cc.Cwnd + Math.Min(Cc.DupAcks, 2) * (long)mss;
            if (Cc.InRecovery && SackOk) cwnd = Math.Max(0, Cc.Cwnd - Pipe()) + (SndNxt - SndUna);
            long wnd = Math.Min(cwnd, SndWnd);
            long usable = (long)wnd - (long)(uint)(SndNxt - SndUna);
            long avail = Seq.Lt(SndNxt, dataEnd) ? dataEnd - SndNxt : 0;
            if (avail > 0)
            {
                int len = (int)Math.Min(Math.Min(avail, mss), Math.Max(usable, 0));
                bool retransmit = Seq.Lt(SndNxt, SndMax);
                if (retransmit && Sacked.NextStartAfter(SndNxt) is uint next && Seq.Lt(next, SndNxt + (uint)len))
                    len = (int)(next - SndNxt);
                if (len <= 0)
                {
                    if (SndWnd == 0 && SndNxt == SndUna) ArmPersist();
                    break;
                }
                if (len < mss && !retransmit)
                {
                    bool tail = len == avail;
                    // Nagle (RFC 896): a small segment waits while data is unacknowledged, unless TCP_NODELAY.
                    if (tail && !Options.NoDelay && SndUna != SndNxt && !FinQueued) break;
                    if (tail && Options.Cork && !FinQueued) break;
                    // Sender SWS avoidance: a window-limited runt waits for more window while data is in flight.
                    if (!tail && SndUna != SndNxt && len < MaxSndWnd / 2) break;
                }
                bool fin = FinQueued && SndNxt + (uint)len == dataEnd;
                SendData(SndNxt, len, fin, retransmit);
                if (!retransmit && !Timestamps && !RttTiming) { RttTiming = true; RttSeq = SndNxt; RttStartNs = Now; }
                SndNxt += (uint)len + (fin ? 1u : 0u);
                if (Seq.Gt(SndNxt, SndMax)) SndMax = SndNxt;
                if (RtoDeadline == long.MaxValue) RtoDeadline = Now + Rtt.RtoNs;
                if (ProbeDeadline == long.MaxValue) ArmProbe(false);
                continue;
            }
            if (FinQueued && SndNxt == dataEnd)
            {
                SendData(SndNxt, 0, true, Seq.Lt(SndNxt, SndMax));
                SndNxt++;
                if (Seq.Gt(SndNxt, SndMax)) SndMax = SndNxt;
                if (RtoDeadline == long.MaxValue) RtoDeadline = Now + Rtt.RtoNs;
            }
            break;
        }
    }

    /// <summary>
    /// Arms the tail loss probe at PTO = max(2·SRTT, 10 ms), plus the peer's delayed ACK when one segment is out, if
    /// that comes before the RTO (<paramref name="off"/>: everything acknowledged, disarm).
    /// </summary>
    public void ArmProbe(bool off)
    {
        if (off || !Rtt.HasSample || ProbeSent || State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck))
        {
            if (off) ProbeDeadline = long.MaxValue;
            return;
        }
        long pto = Math.Max(2 * Rtt.SrttNs, 10_000_000);
        if (Flight <= SendMss) pto += DelayedAckNs;
        long at = Now + pto;
        ProbeDeadline = at < RtoDeadline ? at : long.MaxValue;
    }

    /// <summary>
    /// The probe: in SACK recovery, the retransmissions since the last are presumed lost and go again; otherwise new
    /// data if the windows allow, else the last segment again, so that the peer's ACK (with SACK) shows what is missing.
    /// </summary>
    private void SendProbeSegment()
    {
        ProbeSent = true;
        _layer.Stats.TailProbes++;
        if (SndUna == SndMax) return;
        if (!Cc.InRecovery && SackOk && Sacked.Count > 0 && Seq.Ge(SndUna, Cc.Recover) && SndNxt == SndMax)
        {
            // ACKs stopped with a hole below SACKed data: too few segments followed the loss for three duplicate
            // ACKs, but a probe timeout's worth of silence says it is lost (RACK's reasoning): recover now.
            Cc.EnterRecovery(Flight, SendMss, SndMax, SndUna, true);
            _layer.Stats.FastRecoveries++;
            RetransmitHole(SndUna);
            return;
        }
        if (Cc.InRecovery && SackOk)
        {
            Cc.RetransmitHigh = SndUna;
            RetransmitHole(SndUna);
            return;
        }
        uint dataEnd = SndBufSeq + (uint)Snd.Count;
        if (Seq.Lt(SndNxt, dataEnd) && Seq.Lt(SndNxt - SndUna, (uint)Math.Max(SndWnd, 0)) && SndNxt == SndMax)
        {
            int len = (int)Math.Min(Math.Min(dataEnd - SndNxt, (long)CurrentMss), SndWnd - (SndNxt - SndUna));
            if (len > 0)
            {
                bool fin = FinQueued && SndNxt + (uint)len == dataEnd;
                SendData(SndNxt, len, fin, false);
                SndNxt += (uint)len + (fin ? 1u : 0u);
                SndMax = SndNxt;
                return;
            }
        }
        // The last segment (or the FIN) again.
        bool finOut = FinSent;
        uint end = finOut ? FinSeq : SndMax;
        int last = (int)Math.Min((long)(end - SndUna), CurrentMss);
        uint start = end - (uint)last;
        if (Seq.Lt(start, SndBufSeq)) { start = SndBufSeq; last = (int)(end - start); }
        if (Sacked.Contains(start)) return; // the peer has it
        SendData(start, last, finOut, true);
    }

    /// <summary>Bytes of the SACK scoreboard.</summary>
    public long SackedBytes()
    {
        long n = 0;
        for (int i = 0; i < Sacked.Count; i++) n += Sacked[i].End - Sacked[i].Start;
        return n;
    }

    /// <summary>
    /// RFC 6675's pipe: bytes sent and still in the network — outstanding, less what the peer SACKed, less the holes
    /// below the highest SACK not yet retransmitted (deemed lost).
    /// </summary>
    public long Pipe()
    {
        long pipe = (long)(uint)(SndMax - SndUna) - SackedBytes();
        if (Sacked.HighestEnd is uint high)
        {
            uint from = Seq.Max(Cc.RetransmitHigh, SndUna);
            while (Seq.Lt(from, high))
            {
                uint start = Sacked.SkipCovered(from);
                if (!Seq.Lt(start, high)) break;
                uint end = Sacked.NextStartAfter(start) ?? high;
                pipe -= end - start;
                from = end;
            }
        }
        return Math.Max(pipe, 0);
    }

    /// <summary>Fast recovery with SACK: while the pipe has room, retransmit the next lost hole (new data follows in the caller).</summary>
    private void SendInSackRecovery(int mss)
    {
        for (int guard = 0; guard < 1024; guard++)
        {
            if (Pipe() + mss > Cc.Cwnd) return;
            if (Sacked.HighestEnd is not uint high) return;
            uint from = Sacked.SkipCovered(Seq.Max(Cc.RetransmitHigh, SndUna));
            if (!Seq.Lt(from, high)) return;
            uint before = Cc.RetransmitHigh;
            RetransmitHole(from);
            if (Cc.RetransmitHigh == before) return;
        }
    }

    private void ArmPersist()
    {
        if (PersistDeadline != long.MaxValue || RtoDeadline != long.MaxValue) return;
        PersistDeadline = Now + Math.Min(Rtt.RtoNs << Math.Min(PersistBackoff, 10), RttEstimator.MaxRtoNs);
    }

    /// <summary>Retransmits one segment at the first byte at or after <paramref name="from"/> the peer lacks.</summary>
    public void RetransmitHole(uint from)
    {
        uint seq = Seq.Max(from, SndUna);
        seq = Sacked.SkipCovered(seq);
        if (!Seq.Lt(seq, SndMax)) return;
        // Only holes below the highest SACKed byte are known lost (or the very first unacknowledged segment).
        if (seq != SndUna && (Sacked.HighestEnd is not uint high || !Seq.Lt(seq, high))) return;
        uint dataEnd = SndBufSeq + (uint)Snd.Count;
        int len = Seq.Lt(seq, dataEnd) ? (int)Math.Min((long)(dataEnd - seq), CurrentMss) : 0;
        if (Sacked.NextStartAfter(seq) is uint next && Seq.Lt(next, seq + (uint)len)) len = (int)(next - seq);
        bool fin = FinSent && seq + (uint)len == FinSeq;
        if (len == 0 && !fin) return;
        SendData(seq, len, fin, true);
        Cc.RetransmitHigh = Seq.Max(Cc.RetransmitHigh, seq + (uint)len + (fin ? 1u : 0u));
        Cc.RetransmitMark = SndMax;
    }

    private void SendData(uint seq, int len, bool fin, bool retransmit)
    {
        var flags = TcpFlags.Ack;
        if (len > 0 && seq + (uint)len == SndBufSeq + (uint)Snd.Count) flags |= TcpFlags.Psh;
        if (fin) flags |= TcpFlags.Fin;
        if (retransmit) { TotalRetransmits++; _layer.Stats.Retransmits++; }
        Send(seq, flags, (int)(seq - SndBufSeq), len);
    }

    public void SendAck() => Send(SndNxt, TcpFlags.Ack, 0, 0);

    /// <summary>A probe the peer must answer with an ACK (zero window, keepalive): one byte below SND.UNA, no data.</summary>
    public void SendProbe() => Send(SndUna - 1, TcpFlags.Ack, 0, 0);

    public void SendSyn(bool withAck)
    {
        var opt = TcpHeader.OutOptions.None;
        opt.Mss = OwnMss();
        if (withAck)
        {
            // A SYN-ACK offers only what the peer's SYN offered.
            opt.WindowScale = SndScale > 0 || RcvScale > 0 ? RcvScale : -1;
            opt.SackPermitted = SackOk;
            opt.Timestamp = Timestamps;
        }
        else
        {
            opt.WindowScale = RcvScale;
            opt.SackPermitted = true;
            opt.Timestamp = true;
        }
        if (opt.Timestamp) { opt.TsVal = TsNow; opt.TsEcr = withAck ? TsRecent : 0; }
        ushort window = (ushort)Math.Min(Rcv.Free, 65535);
        RcvAdvEdge = RcvNxt + window;
        _layer.SendSegment(Local, Remote, Iss, withAck ? RcvNxt : 0, withAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn,
            window, opt, null, 0, 0, Options.Tos, Options.Ttl);
        LastSendNs = Now;
    }

    private void Send(uint seq, TcpFlags flags, int bufOffset, int len)
    {
        var opt = TcpHeader.OutOptions.None;
        if (Timestamps) { opt.Timestamp = true; opt.TsVal = TsNow; opt.TsEcr = TsRecent; }
        if (SackOk && Rcv.OutOfOrder.Count > 0) opt.SackCount = Rcv.SackBlocks(ref opt.Sack, Timestamps ? 3 : 4);
        ushort window = WindowToAdvertise();
        _layer.SendSegment(Local, Remote, seq, RcvNxt, flags, window, opt, len > 0 ? Snd : null, bufOffset, len, Options.Tos, Options.Ttl);
        AckNow = false;
        AckPending = 0;
        DelAckDeadline = long.MaxValue;
        LastSendNs = Now;
    }

    /// <summary>The window field: free receive space, never shrinking the right edge already offered (RFC 9293 §3.8.6.2.2).</summary>
    private ushort WindowToAdvertise()
    {
        long free = Rcv.Free;
        long offered = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        // Receiver SWS avoidance: do not open a small window (less than an MSS or half the buffer).
        if (free - offered < Math.Min(Rcv.Capacity / 2, SendMss) && offered < free) free = offered;
        long wnd = Math.Max(free, offered);
        // Rounded down to the scale's granularity: the right edge may appear to recede by less than 2^scale bytes
        // (RFC 7323 §2.4), but never grows past the free space.
        long field = Math.Min(wnd >> RcvScale, 65535);
        uint edge = RcvNxt + (uint)(field << RcvScale);
        if (Seq.Gt(edge, RcvAdvEdge)) RcvAdvEdge = edge;
        return (ushort)field;
    }

    /// <summary>After the program read: tell the peer when the window opened enough to matter (a zero window reopening).</summary>
    public void MaybeWindowUpdate()
    {
        if (!Synchronized || FinReceived) return;
        long offered = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        long free = Rcv.Free;
        if (free - offered >= Math.Min(Rcv.Capacity / 2, 2L * SendMss) || (offered < SendMss && free >= SendMss))
        {
            AckNow = true;
            Output();
        }
    }
}
