using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Tcp;
using Xunit;

namespace Remus.Tests.Net.Tcp;

public sealed class TcpRobustnessTests
{
    private static readonly IPv4Address A = new(0x0A630002), B = new(0x0A630001);

    /// <summary>A segment from B's side of a connection, forged with the given sequence number and flags.</summary>
    private static void Inject(TcpTestNet.Host into, TcpSocket victim, uint seq, TcpFlags flags, uint ack = 0)
    {
        var t = victim.Tcb!;
        var seg = new byte[20];
        TcpHeader.Write(seg, t.Remote.Port, t.Local.Port, seq, ack, flags, 1000, TcpHeader.OutOptions.None);
        TcpHeader.FinishChecksum(seg, t.Remote.Address, t.Local.Address);
        into.Tcp.Receive(t.Remote.Address, t.Local.Address, seg, 0);
    }

    [Fact]
    public void Rst_is_accepted_only_at_the_expected_sequence_number()
    {
        var net = new TcpTestNet(41);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var t = c.Tcb!;
        long acksBefore = a.Tcp.Stats.SegmentsOut;
        // In the window but not at RCV.NXT: a challenge ACK (RFC 5961 §3.2), the connection stays.
        Inject(a, c, t.RcvNxt + 1000, TcpFlags.Rst);
        Assert.Equal(TcpState.Established, t.State);
        Assert.Equal(acksBefore + 1, a.Tcp.Stats.SegmentsOut);
        // Outside the window: dropped silently.
        Inject(a, c, t.RcvNxt + 0x40000000, TcpFlags.Rst);
        Assert.Equal(TcpState.Established, t.State);
        // A SYN on the open connection: a challenge ACK, no reset (RFC 5961 §4).
        Inject(a, c, t.RcvNxt, TcpFlags.Syn);
        Assert.Equal(TcpState.Established, t.State);
        // Exactly at RCV.NXT: reset.
        Inject(a, c, t.RcvNxt, TcpFlags.Rst);
        Assert.Equal(TcpState.Closed, t.State);
        Assert.Equal((int)TcpErrno.ECONNRESET, c.TakeError());
        Assert.True(net.RunUntil(() => s.Tcb!.State == TcpState.Established, 1_000_000_000)); // the peer is none the wiser
    }

    [Fact]
    public void Data_beyond_the_window_and_old_acks_are_ignored()
    {
        var net = new TcpTestNet(42);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var t = c.Tcb!;
        // An ACK for data never sent: answered with an ACK, nothing acknowledged.
        uint una = t.SndUna;
        Inject(a, c, t.RcvNxt, TcpFlags.Ack, t.SndNxt + 100_000);
        Assert.Equal(una, t.SndUna);
        Assert.Equal(TcpState.Established, t.State);
        var up = new TcpTransfer(c, s, 100_000, 1);
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
    }

    [Fact]
    public void Sack_limits_retransmission_to_what_was_lost()
    {
        // Losing every 20th data segment of one direction: each loss costs one retransmission, no timeout.
        var net = new TcpTestNet(43) { LatencyNs = 200_000 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        int n = 0;
        long lost = 0;
        net.Drop = (src, _, data) => src == A && data.Length > 100 && ++n % 20 == 0 && ++lost > 0;
        var up = new TcpTransfer(c, s, 3 << 20, 2);
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
        var st = a.Tcp.Stats;
        Assert.True(st.Retransmits <= lost * 11 / 10 + 2, $"{st.Retransmits} retransmissions for {lost} losses");
        Assert.Equal(0, st.Timeouts);
    }

    [Fact]
    public void A_lost_retransmission_is_found_by_sack_without_a_timeout()
    {
        // The 50th data segment is lost, and so is its first retransmission: SACKs for data sent after that
        // retransmission show it lost too (without SACK only the retransmission timer could tell).
        var net = new TcpTestNet(45) { LatencyNs = 200_000 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        int n = 0, drops = 0;
        uint victim = 0;
        net.Drop = (src, _, data) =>
        {
            if (src != A || data.Length <= 100) return false;
            uint seq = (uint)(data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7]);
            if (++n == 50) victim = seq;
            if (victim != 0 && seq == victim && drops < 2) { drops++; return true; }
            return false;
        };
        var up = new TcpTransfer(c, s, 1 << 20, 3);
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
        Assert.Equal(2, drops);
        Assert.Equal(0, a.Tcp.Stats.Timeouts);
        Assert.Equal(2, a.Tcp.Stats.Retransmits);
    }

    [Fact]
    public void After_a_timeout_sacked_data_is_not_sent_again()
    {
        // Every 10th of 200 data segments is lost, with all its retransmissions for 1.5 s: retransmission timeouts
        // fire while the receiver holds (and SACKs) what lies between the holes. Only the holes are resent.
        var net = new TcpTestNet(46) { LatencyNs = 200_000 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        int n = 0, resentOthers = 0;
        uint highest = 0;
        bool any = false;
        long until = 0;
        var victims = new HashSet<uint>();
        net.Drop = (src, _, data) =>
        {
            if (src != A || data.Length <= 100) return false;
            uint seq = (uint)(data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7]);
            bool fresh = !any || Seq.Gt(seq, highest);
            if (fresh)
            {
                highest = seq;
                any = true;
                if (++n is >= 300 and < 500 && n % 10 == 0)
                {
                    victims.Add(seq);
                    if (n == 300) until = net.Now + 1_500_000_000;
                }
            }
            else if (!victims.Contains(seq)) resentOthers++;
            if (!victims.Contains(seq)) return false;
            return net.Now < until;
        };
        var up = new TcpTransfer(c, s, 2 << 20, 4);
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
        Assert.True(a.Tcp.Stats.Timeouts >= 2, $"{a.Tcp.Stats.Timeouts} timeouts");
        Assert.Equal(0, resentOthers);
    }

    [Fact]
    public void A_half_open_connection_survives_a_restore_and_completes()
    {
        var net = new TcpTestNet(44);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var l = b.NewSocket();
        l.Bind(TcpTestNet.Ep(B, 80));
        l.Listen(8);
        // The client's final ACK is lost: the server holds a SYN_RECEIVED connection in its SYN queue.
        bool dropped = false;
        net.Drop = (src, _, data) => src == A && !dropped && (data[13] & 0x12) == 0x10 && (dropped = true);
        var c = a.NewSocket();
        c.Connect(TcpTestNet.Ep(B, 80));
        net.Advance(10_000_000);
        Assert.Equal(1, l.SynQueue.Count);
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, true)) b.Tcp.Save(w);
        b.Tcp = new TcpLayer(b);
        ms.Position = 0;
        using (var r = new BinaryReader(ms)) b.Tcp.Load(r);
        l = (TcpSocket)b.Tcp.SocketById(l.Id)!;
        Assert.Equal(1, l.SynQueue.Count);
        // The SYN-ACK's retransmission (1 s) draws the ACK again.
        Remus.Sandbox.Net.Sockets.IInetSocket? acc = null;
        Assert.True(net.RunUntil(() => acc != null, 5_000_000_000, () => { if (acc == null) l.Accept(out acc); }));
        Assert.Equal(0, l.SynQueue.Count);
        Assert.Equal(PollEvents.Out | PollEvents.WrNorm, acc!.Readiness());
    }
}
