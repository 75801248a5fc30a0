namespace Remus.Sandbox.Net.Tcp;

/// <summary>Segment arrival (RFC 9293 §3.10.7), with RFC 5961's in-window RST/SYN checks.</summary>
internal sealed partial class TcpControlBlock
{
    public void OnSegment(in TcpHeader h, ReadOnlySpan<byte> data)
    {
        Dirty = true;
        LastRecvNs = Now;
        KeepProbes = 0;
        if (State == TcpState.SynSent) OnSegmentSynSent(h, data);
        else if (State != TcpState.Closed) OnSegmentSynchronized(h, data);
        if (State != TcpState.Closed)
        {
            if (KeepDeadline != long.MaxValue) ArmKeepalive();
            Output();
        }
    }

    private void OnSegmentSynSent(in TcpHeader h, ReadOnlySpan<byte> data)
    {
        bool ack = h.Has(TcpFlags.Ack);
        if (ack && (Seq.Le(h.AckNumber, Iss) || Seq.Gt(h.AckNumber, SndMax)))
        {
            if (!h.Has(TcpFlags.Rst)) _layer.SendReset(Local, Remote, h.AckNumber, 0, false);
            return;
        }
        if (h.Has(TcpFlags.Rst))
        {
            if (ack) Terminate((int)TcpErrno.ECONNREFUSED);
            return;
        }
        if (!h.Has(TcpFlags.Syn)) return;
        Irs = h.SequenceNumber;
        RcvNxt = Irs + 1;
        TakeSynOptions(h, weOffered: true);
        if (ack)
        {
            SndUna = h.AckNumber;
            SndBufSeq = SndUna;
            Established(h);
            if (!Timestamps && RttTiming) Rtt.Sample(Now - RttStartNs);
            else if (Timestamps && h.TsEcr != 0) Rtt.Sample(((long)(TsNow - h.TsEcr)) * 1_000_000);
            RttTiming = false;
            AckNow = true;
            if (data.Length > 0) TakeData(h.SequenceNumber + 1, data);
            if (h.Has(TcpFlags.Fin)) OnFinAt(h.SequenceNumber + 1 + (uint)data.Length);
        }
        else
        {
            // Simultaneous open: answer with SYN-ACK and wait for its ACK.
            State = TcpState.SynReceived;
            Retransmits = 0;
            SendSyn(withAck: true);
            RtoDeadline = Now + Rtt.RtoNs;
        }
    }

    private void Established(in TcpHeader h)
    {
        State = TcpState.Established;
        SndWnd = (long)h.Window << (h.Has(TcpFlags.Syn) ? 0 : SndScale);
        MaxSndWnd = Math.Max(MaxSndWnd, SndWnd);
        SndWl1 = h.SequenceNumber;
        SndWl2 = h.AckNumber;
        Retransmits = 0;
        RtoDeadline = long.MaxValue;
        WakeOwner = true;
        ArmKeepalive();
    }

    private void OnSegmentSynchronized(in TcpHeader h, ReadOnlySpan<byte> data)
    {
        uint seq = h.SequenceNumber;
        bool syn = h.Has(TcpFlags.Syn), fin = h.Has(TcpFlags.Fin), rst = h.Has(TcpFlags.Rst);
        int segLen = data.Length + (syn ? 1 : 0) + (fin ? 1 : 0);

        // A retransmitted SYN while we are half-open: our SYN-ACK was lost.
        if (State == TcpState.SynReceived && syn && !h.Has(TcpFlags.Ack) && seq == Irs)
        {
            SendSyn(withAck: true);
            return;
        }

        // 1. Is the segment in the window?
        uint wnd = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        bool ok;
        if (segLen == 0) ok = wnd == 0 ? seq == RcvNxt : Seq.InRange(seq, RcvNxt, RcvNxt + wnd);
        else ok = wnd != 0 && (Seq.InRange(seq, RcvNxt, RcvNxt + wnd) || Seq.InRange(seq + (uint)segLen - 1, RcvNxt, RcvNxt + wnd));
        if (!ok && wnd == 0 && seq == RcvNxt && !rst)
        {
            // A zero window still takes ACKs (RFC 9293 §3.10.7.4): drop the data, keep the rest.
            data = [];
            fin = false;
            syn = false;
            ok = true;
            AckNow = true;
        }
        if (!ok)
        {
            if (!rst)
            {
                AckNow = true;
                if (State == TcpState.TimeWait && fin) CloseDeadline = Now + TimeWaitNs;
            }
            return;
        }
        if (Timestamps && h.HasTimestamp && Seq.Le(seq, RcvNxt) && Seq.Ge(h.TsVal, TsRecent)) TsRecent = h.TsVal;

        // 2. RST: accepted only exactly at RCV.NXT; elsewhere in the window, a challenge ACK (RFC 5961 §3).
        if (rst)
        {
            if (seq == RcvNxt) OnReset();
            else AckNow = true;
            return;
        }
        // 4. A SYN in a synchronized state: challenge ACK (RFC 5961 §4).
        if (syn)
        {
            AckNow = true;
            return;
        }
        if (!h.Has(TcpFlags.Ack)) return;

        // 5. ACK.
        if (State == TcpState.SynReceived)
        {
            if (!(Seq.Gt(h.AckNumber, SndUna) && Seq.Le(h.AckNumber, SndMax)))
            {
                _layer.SendReset(Local, Remote, h.AckNumber, 0, false);
                return;
            }
            if (Listener != null && !_layer.OfferToAcceptQueue(this)) return; // accept queue full: as Linux, drop the ACK
            Established(h);
        }
        if (Seq.Gt(h.AckNumber, SndMax))
        {
            AckNow = true;
            return;
        }
        ProcessAck(h, data.Length, fin);
        if (State == TcpState.Closed) return;
        if (State == TcpState.TimeWait)
        {
            if (fin) { AckNow = true; CloseDeadline = Now + TimeWaitNs; }
            return;
        }

        // 7. Data.
        if (data.Length > 0 && State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
        {
            if (UserClosed)
            {
                // Data for a socket the program closed: Linux answers with RST and drops the connection.
                _layer.SendReset(Local, Remote, SndNxt, RcvNxt + (uint)data.Length, true);
                Terminate(0);
                return;
            }
            TakeData(seq, data);
        }
        // 8. FIN.
        if (fin) OnFinAt(seq + (uint)data.Length);
    }

    private void TakeData(uint seq, ReadOnlySpan<byte> data)
    {
        bool hadGap = Rcv.OutOfOrder.Count > 0;
        int advance = Rcv.Accept(RcvNxt, seq, data);
        if (advance > 0)
        {
            RcvNxt += (uint)advance;
            WakeOwner = true;
            if (hadGap) AckNow = true; // filling a hole: ACK at once (RFC 5681 §4.2)
            else if (++AckPending >= 2) AckNow = true;
            else if (DelAckDeadline == long.MaxValue) DelAckDeadline = Now + DelayedAckNs;
            if (HasOutOfOrderFin && OutOfOrderFinSeq == RcvNxt) OnFinAt(RcvNxt);
        }
        else AckNow = true; // out of order, duplicate or no room: a duplicate ACK (with SACK) now
    }

    private void OnFinAt(uint finSeq)
    {
        if (FinReceived) return;
        if (finSeq != RcvNxt)
        {
            if (Seq.Gt(finSeq, RcvNxt)) { HasOutOfOrderFin = true; OutOfOrderFinSeq = finSeq; }
            AckNow = true;
            return;
        }
        RcvNxt++;
        FinReceived = true;
        HasOutOfOrderFin = false;
        AckNow = true;
        WakeOwner = true;
        switch (State)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                State = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                State = TcpState.Closing;
                break;
            case TcpState.FinWait2:
                EnterTimeWait();
                break;
        }
        KeepDeadline = long.MaxValue;
    }

    private void EnterTimeWait()
    {
        if (!_layer.TryAddTimeWait(this))
        {
            // Past the TIME_WAIT cap the connection just ends (Linux: "time wait bucket table overflow").
            Terminate(0);
            return;
        }
        State = TcpState.TimeWait;
        RtoDeadline = ProbeDeadline = PersistDeadline = KeepDeadline = long.MaxValue;
        CloseDeadline = Now + TimeWaitNs;
        Snd.Release();
        WakeOwner = true;
    }

    private void OnReset()
    {
        switch (State)
        {
            case TcpState.SynReceived when Listener != null:
                Terminate(0);
                break;
            case TcpState.SynReceived:
                Terminate((int)TcpErrno.ECONNREFUSED);
                break;
            case TcpState.Established:
            case TcpState.FinWait1:
            case TcpState.FinWait2:
                Terminate((int)TcpErrno.ECONNRESET);
                break;
            case TcpState.CloseWait:
                Terminate((int)TcpErrno.EPIPE);
                break;
            default:
                Terminate(0);
                break;
        }
    }

    private void ProcessAck(in TcpHeader h, int dataLength, bool fin)
    {
        uint ack = h.AckNumber;
        long newWnd = (long)h.Window << SndScale;

        if (SackOk && h.SackCount > 0)
        {
            for (int i = 0; i < h.SackCount; i++)
            {
                uint s = h.Sack[i * 2], e = h.Sack[i * 2 + 1];
                if (Seq.Gt(e, ack) && Seq.Le(e, SndMax) && Seq.Lt(s, e)) Sacked.Add(Seq.Max(s, ack), e);
            }
        }

        bool advanced = Seq.Gt(ack, SndUna);
        if (advanced)
        {
            uint acked = ack - SndUna;
            if (Timestamps && h.HasTimestamp && h.TsEcr != 0) Rtt.Sample(((long)(TsNow - h.TsEcr)) * 1_000_000);
            else if (RttTiming && Seq.Gt(ack, RttSeq)) { Rtt.Sample(Now - RttStartNs); RttTiming = false; }

            bool finAcked = FinSent && Seq.Gt(ack, FinSeq);
            int dataAcked = (int)Math.Min((long)(uint)(ack - SndBufSeq), Snd.Count);
            if (Seq.Lt(ack, SndBufSeq)) dataAcked = 0;
            Snd.Consume(dataAcked);
            SndBufSeq += (uint)dataAcked;
            SndUna = ack;
            if (Seq.Lt(SndNxt, SndUna)) SndNxt = SndUna;
            Sacked.RemoveBelow(SndUna);
            // SACK information is advisory (RFC 2018 §8): a cumulative ACK that stops exactly where SACKed data begins
            // says the peer dropped what it SACKed (reneging, as Linux's tcp_check_sack_reneging): forget the scoreboard.
            if (Sacked.Count > 0 && Sacked[0].Start == SndUna) Sacked.Clear();
            if (dataAcked > 0) WakeOwner = true;

            if (Cc.InRecovery)
            {
                if (Seq.Ge(ack, Cc.Recover)) Cc.ExitRecovery(Flight, SendMss, SackOk);
                else if (SackOk) Cc.RetransmitHigh = Seq.Max(Cc.RetransmitHigh, SndUna);
                else
                {
                    Cc.OnPartialAck(acked, SendMss);
                    RetransmitHole(SndUna);
                }
            }
            else
            {
                Cc.DupAcks = 0;
                Cc.OnNewAck(acked, SendMss);
            }
            Retransmits = 0;
            RtoDeadline = SndUna == SndMax ? long.MaxValue : Now + Rtt.RtoNs;
            ProbeSent = false;
            ArmProbe(SndUna == SndMax);

            if (finAcked)
            {
                switch (State)
                {
                    case TcpState.FinWait1:
                        State = TcpState.FinWait2;
                        if (UserClosed) CloseDeadline = Now + FinWait2TimeoutNs;
                        break;
                    case TcpState.Closing:
                        EnterTimeWait();
                        break;
                    case TcpState.LastAck:
                        Terminate(0);
                        return;
                }
                WakeOwner = true;
            }
        }
        else if (ack == SndUna && dataLength == 0 && !fin && newWnd == SndWnd && SndMax != SndUna)
        {
            Cc.DupAcks++;
            if (Cc.InRecovery && !SackOk) Cc.Cwnd += SendMss; // NewReno inflation (RFC 6582 §3.2 step 4)
        }

        if (!Cc.InRecovery && SndMax != SndUna && Seq.Ge(SndUna, Cc.Recover) && SndNxt == SndMax
            && (Cc.DupAcks >= Congestion.DupAckThreshold || (SackOk && SackedBytes() > 2L * SendMss)))
        {
            // Fast retransmit: three duplicate ACKs, or (RFC 6675) more than two segments SACKed above SND.UNA.
            Cc.EnterRecovery(Flight, SendMss, SndMax, SndUna, SackOk);
            _layer.Stats.FastRecoveries++;
            RetransmitHole(SndUna);
            RtoDeadline = Now + Rtt.RtoNs;
        }
        else if (!Cc.InRecovery && SackOk && Seq.Lt(SndUna, Cc.Recover) && SndMax != SndUna)
        {
            // Resending after a timeout: when more than two segments were SACKed since SND.UNA's segment was resent,
            // that resend was lost too; send it again now rather than after another (doubled) timeout.
            long sacked = SackedBytes();
            if (advanced || sacked < Cc.LossSackBase) Cc.LossSackBase = sacked;
            if (sacked - Cc.LossSackBase > 2L * SendMss)
            {
                RetransmitHole(SndUna);
                Cc.LossSackBase = sacked;
            }
        }
        else if (Cc.InRecovery && SackOk && Seq.Gt(Cc.RetransmitHigh, SndUna)
                 && Sacked.HighestEnd is uint high && Seq.Gt(high, Cc.RetransmitMark))
        {
            // Data sent after our last retransmission arrived while a retransmitted hole is still missing: that
            // retransmission was lost too (RACK's idea, RFC 8985): go over the holes again.
            Cc.RetransmitHigh = SndUna;
            Cc.RetransmitMark = SndMax;
        }

        if (Seq.Lt(SndWl1, h.SequenceNumber) || (SndWl1 == h.SequenceNumber && Seq.Le(SndWl2, ack)))
        {
            if (newWnd > SndWnd) WakeOwner = true;
            SndWnd = newWnd;
            MaxSndWnd = Math.Max(MaxSndWnd, SndWnd);
            SndWl1 = h.SequenceNumber;
            SndWl2 = ack;
            if (SndWnd > 0) { PersistDeadline = long.MaxValue; PersistBackoff = 0; }
        }
    }
}
