namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// NewReno congestion control (RFC 5681 slow start and congestion avoidance, RFC 6582 fast recovery), in bytes.
/// </summary>
internal sealed class Congestion
{
    public const int DupAckThreshold = 3;

    public long Cwnd;
    public long Ssthresh = int.MaxValue;
    public int DupAcks;
    public bool InRecovery;
    /// <summary>snd.max when recovery (or the last timeout) began (RFC 6582 "recover").</summary>
    public uint Recover;
    /// <summary>Highest sequence retransmitted in this recovery (SACK-guided hole filling).</summary>
    public uint RetransmitHigh;
    /// <summary>SND.MAX at the last retransmission: a SACK above it means that retransmission should have arrived.</summary>
    public uint RetransmitMark;
    /// <summary>After a timeout: the SACKed bytes when SND.UNA's segment was last resent (more SACKed since: it was lost again).</summary>
    public long LossSackBase;
    private long _avoidanceAcc;

    /// <summary>RFC 5681 initial window: 10 segments as Linux (RFC 6928).</summary>
    public void Init(int mss) => Cwnd = 10L * mss;

    /// <summary>New data acknowledged outside recovery.</summary>
    public void OnNewAck(long acked, int mss)
    {
        if (Cwnd < Ssthresh) Cwnd += Math.Min(acked, mss);
        else
        {
            _avoidanceAcc += acked;
            if (_avoidanceAcc >= Cwnd) { _avoidanceAcc -= Cwnd; Cwnd += mss; }
        }
        Cwnd = Math.Min(Cwnd, 1L << 30);
    }

    /// <summary>Third duplicate ACK: enter fast recovery.</summary>
    public void EnterRecovery(long flight, int mss, uint sndMax, uint sndUna, bool sack)
    {
        Ssthresh = Math.Max(flight / 2, 2L * mss);
        // NewReno inflates by the three segments that left; with SACK the pipe estimate does that (RFC 6675).
        Cwnd = sack ? Ssthresh : Ssthresh + DupAckThreshold * (long)mss;
        RetransmitMark = sndMax;
        InRecovery = true;
        Recover = sndMax;
        RetransmitHigh = sndUna;
    }

    /// <summary>A partial ACK in recovery: deflate by what was acked, add back one segment (RFC 6582 §3.2 step 3).</summary>
    public void OnPartialAck(long acked, int mss)
    {
        Cwnd = Math.Max(Cwnd - acked, mss);
        if (acked >= mss) Cwnd += mss;
    }

    /// <summary>A full ACK ends recovery (RFC 6582 §3.2 step 3, first option).</summary>
    public void ExitRecovery(long flight, int mss, bool sack)
    {
        Cwnd = sack ? Ssthresh : Math.Max(Math.Min(Ssthresh, flight + mss), mss);
        InRecovery = false;
        DupAcks = 0;
    }

    /// <summary>The retransmission timer fired (RFC 5681 §3.1, eq. 4).</summary>
    public void OnTimeout(long flight, int mss, uint sndMax)
    {
        Ssthresh = Math.Max(flight / 2, 2L * mss);
        Cwnd = mss;
        InRecovery = false;
        DupAcks = 0;
        Recover = sndMax;
        _avoidanceAcc = 0;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(Cwnd); w.Write(Ssthresh); w.Write(DupAcks); w.Write(InRecovery); w.Write(Recover); w.Write(RetransmitHigh); w.Write(RetransmitMark); w.Write(LossSackBase); w.Write(_avoidanceAcc);
    }

    public void Load(BinaryReader r)
    {
        Cwnd = r.ReadInt64(); Ssthresh = r.ReadInt64(); DupAcks = r.ReadInt32(); InRecovery = r.ReadBoolean();
        Recover = r.ReadUInt32(); RetransmitHigh = r.ReadUInt32(); RetransmitMark = r.ReadUInt32(); LossSackBase = r.ReadInt64(); _avoidanceAcc = r.ReadInt64();
    }
}

/// <summary>RFC 6298's retransmission timeout from RTT samples (minimum 200 ms like Linux, initial 1 s, maximum 120 s).</summary>
internal sealed class RttEstimator
{
    public const long MinRtoNs = 200_000_000, InitialRtoNs = 1_000_000_000, MaxRtoNs = 120_000_000_000, GranularityNs = 1_000_000;

    public long SrttNs, RttvarNs;
    public long RtoNs = InitialRtoNs;
    public bool HasSample;

    public void Sample(long rttNs)
    {
        if (rttNs < 0) return;
        if (!HasSample)
        {
            SrttNs = rttNs;
            RttvarNs = rttNs / 2;
            HasSample = true;
        }
        else
        {
            RttvarNs = (3 * RttvarNs + Math.Abs(SrttNs - rttNs)) / 4;
            SrttNs = (7 * SrttNs + rttNs) / 8;
        }
        RtoNs = Math.Clamp(SrttNs + Math.Max(GranularityNs, 4 * RttvarNs), MinRtoNs, MaxRtoNs);
    }

    public void Save(BinaryWriter w) { w.Write(SrttNs); w.Write(RttvarNs); w.Write(RtoNs); w.Write(HasSample); }

    public void Load(BinaryReader r) { SrttNs = r.ReadInt64(); RttvarNs = r.ReadInt64(); RtoNs = r.ReadInt64(); HasSample = r.ReadBoolean(); }
}
