namespace Remus.Sandbox.Net.Tcp;

/// <summary>Retransmission (RFC 6298), persist, delayed ACK, keepalive, TIME_WAIT and orphaned FIN_WAIT_2 timers.</summary>
internal sealed partial class TcpControlBlock
{
    public void RunTimers(long now)
    {
        Dirty = true;
        if (CloseDeadline <= now)
        {
            CloseDeadline = long.MaxValue;
            if (State is TcpState.TimeWait or TcpState.FinWait2) { Terminate(0); return; }
        }
        if (RtoDeadline <= now)
        {
            RtoDeadline = long.MaxValue;
            OnRetransmitTimeout(now);
            if (State == TcpState.Closed) return;
        }
        if (ProbeDeadline <= now)
        {
            ProbeDeadline = long.MaxValue;
            if (SndUna != SndMax) SendProbeSegment();
        }
        if (PersistDeadline <= now)
        {
            PersistDeadline = long.MaxValue;
            if (SndWnd == 0 && Snd.Count > (int)(uint)(SndNxt - SndBufSeq) - 0)
            {
                SendProbe();
                PersistBackoff++;
                ArmPersist();
            }
        }
        if (DelAckDeadline <= now)
        {
            DelAckDeadline = long.MaxValue;
            if (State is not (TcpState.Closed or TcpState.SynSent)) SendAck();
        }
        if (KeepDeadline <= now)
        {
            KeepDeadline = long.MaxValue;
            OnKeepalive(now);
        }
        if (State != TcpState.Closed) Output();
    }

    private void OnRetransmitTimeout(long now)
    {
        if (State is TcpState.SynSent or TcpState.SynReceived)
        {
            if (++Retransmits > (State == TcpState.SynSent ? SynRetries : SynAckRetries))
            {
                Terminate(Listener != null ? 0 : (int)TcpErrno.ETIMEDOUT);
                return;
            }
            Rtt.RtoNs = Math.Min(Rtt.RtoNs * 2, RttEstimator.MaxRtoNs);
            SendSyn(withAck: State == TcpState.SynReceived);
            TotalRetransmits++;
            RtoDeadline = now + Rtt.RtoNs;
            return;
        }
        if (SndUna == SndMax) return;
        if (++Retransmits > MaxRetransmits)
        {
            _layer.SendReset(Local, Remote, SndNxt, RcvNxt, true);
            Terminate((int)TcpErrno.ETIMEDOUT);
            return;
        }
        _layer.Stats.Timeouts++;
        ProbeDeadline = long.MaxValue;
        ProbeSent = false;
        Cc.OnTimeout(Flight, SendMss, SndMax);
        SndNxt = SndUna;
        Cc.LossSackBase = SackedBytes();
        RttTiming = false;
        Rtt.RtoNs = Math.Min(Rtt.RtoNs * 2, RttEstimator.MaxRtoNs);
        RtoDeadline = now + Rtt.RtoNs;
        // Output() below resends from SND.UNA, one segment (cwnd is 1 MSS), skipping SACKed ranges.
    }

    private void OnKeepalive(long now)
    {
        if (!Options.KeepAlive || State is not (TcpState.Established or TcpState.CloseWait)) return;
        if (SndUna != SndMax)
        {
            // Data in flight: the retransmission timer watches the peer; look again after the interval.
            KeepDeadline = now + Options.KeepIntervalSeconds * 1_000_000_000L;
            return;
        }
        if (KeepProbes >= Options.KeepCount)
        {
            _layer.SendReset(Local, Remote, SndNxt, RcvNxt, true);
            Terminate((int)TcpErrno.ETIMEDOUT);
            return;
        }
        SendProbe();
        KeepProbes++;
        KeepDeadline = now + Options.KeepIntervalSeconds * 1_000_000_000L;
    }
}
