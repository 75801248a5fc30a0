using System.Diagnostics;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Tcp;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Net.Tcp;

public sealed class TcpSnapshotTests(ITestOutputHelper output)
{
    private static readonly IPv4Address A = new(0x0A630002), B = new(0x0A630001);

    /// <summary>Saves a host's TCP into bytes and replaces it with a fresh layer loaded from them (a restore or failover).</summary>
    private static byte[] Restore(TcpTestNet.Host host)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) host.Tcp.Save(w);
        var bytes = ms.ToArray();
        var fresh = new TcpLayer(host);
        using (var r = new BinaryReader(new MemoryStream(bytes))) fresh.Load(r);
        host.Tcp = fresh;
        return bytes;
    }

    private static byte[] SaveBytes(TcpLayer tcp)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms)) tcp.Save(w);
        return ms.ToArray();
    }

    private static List<(uint, uint)> Ranges(SeqRangeSet set) => Enumerable.Range(0, set.Count).Select(i => set[i]).ToList();

    private static TcpSocket Find(TcpTestNet.Host h, TcpSocket old) => (TcpSocket)h.Tcp.SocketById(old.Id)!;

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    public void Round_trip_mid_transfer_under_loss_completes_the_streams_intact(int seed)
    {
        var net = new TcpTestNet(seed) { Loss = 0.06, Reorder = 0.1, Duplicate = 0.01 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 3 << 20, seed);
        var down = new TcpTransfer(s, c, 1 << 20, seed + 1);
        void Pump() { up.Pump(); down.Pump(); }

        // The receiver holds out-of-order data and the sender a SACK scoreboard: restore the receiver then.
        Assert.True(net.RunUntil(() => up.Received > 500_000 && s.Tcb!.Rcv.OutOfOrder.Count > 0 && c.Tcb!.Sacked.Count > 0, app: Pump));
        var ooo = Ranges(s.Tcb!.Rcv.OutOfOrder);
        var sacked = Ranges(c.Tcb!.Sacked);
        Restore(b);
        s = Find(b, s);
        Assert.Equal(ooo, Ranges(s.Tcb!.Rcv.OutOfOrder));
        Assert.Equal(sacked, Ranges(c.Tcb!.Sacked));
        up.To = s;
        down.From = s;

        // Then the sender, with data in flight, unsent data, and timers running.
        Assert.True(net.RunUntil(() => up.Received > 1_500_000 && c.Tcb!.SndMax != c.Tcb.SndUna && c.Tcb.Cc.InRecovery, app: Pump));
        Restore(a);
        c = Find(a, c);
        up.From = c;
        down.To = c;

        Assert.True(net.RunUntil(() => up.Done && down.Done, app: Pump));
        up.AssertIntact();
        down.AssertIntact();
    }

    [Fact]
    public void Save_load_save_gives_the_same_bytes()
    {
        var net = new TcpTestNet(33) { Loss = 0.05, Reorder = 0.1 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 1 << 20, 1);
        net.RunUntil(() => up.Received > 300_000, app: up.Pump);
        var first = SaveBytes(b.Tcp);
        var again = SaveBytes(b.Tcp); // from the cache
        Assert.Equal(first, again);
        var fresh = new TcpLayer(b);
        using (var r = new BinaryReader(new MemoryStream(first))) fresh.Load(r);
        Assert.Equal(first, SaveBytes(fresh));
        // Marking everything dirty re-serializes to the same bytes: the cache holds nothing stale.
        foreach (var x in b.Tcp.Connections) x.Dirty = true;
        Assert.Equal(first, SaveBytes(b.Tcp));
    }

    [Fact]
    public void Loading_into_the_same_layer_again_and_again_replaces_its_state()
    {
        // A Remus backup loads every checkpoint into the same stack, then takes over.
        var net = new TcpTestNet(36) { Loss = 0.03 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var (c, s) = net.Connect(a, b);
        var up = new TcpTransfer(c, s, 1 << 20, 9);
        var backup = new TcpLayer(b);
        for (int epoch = 0; epoch < 5; epoch++)
        {
            net.RunUntil(() => up.Received > (epoch + 1) * 150_000, app: up.Pump);
            var bytes = SaveBytes(b.Tcp);
            using var r = new BinaryReader(new MemoryStream(bytes));
            backup.Load(r);
            Assert.Equal(bytes, SaveBytes(backup));
        }
        long budget = backup.Budget.InUse;
        Assert.Equal(b.Tcp.Ports.Count, backup.Ports.Count);
        // Takeover: the backup's layer carries on.
        b.Tcp = backup;
        s = Find(b, s);
        up.To = s;
        Assert.True(net.RunUntil(() => up.Done, app: up.Pump));
        up.AssertIntact();
        Assert.True(budget <= 2L * (1 << 20) + 65536, $"budget {budget}");
    }

    [Fact]
    public void Listeners_queues_draining_and_time_wait_connections_survive_a_restore()
    {
        var net = new TcpTestNet(34);
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var l = b.NewSocket();
        Assert.Equal(0, l.Bind(TcpTestNet.Ep(B, 80)));
        Assert.Equal(0, l.Listen(8));
        // Two connections wait in the accept queue, each with data the client sent.
        var c1 = a.NewSocket();
        var c2 = a.NewSocket();
        c1.Connect(TcpTestNet.Ep(B, 80));
        c2.Connect(TcpTestNet.Ep(B, 80));
        Assert.True(net.RunUntil(() => l.AcceptQueue.Count == 2));
        c1.Send("one"u8, 0, null);
        c2.Send("two"u8, 0, null);
        // A third connection: the client closes it with 200 kB unsent (it drains after close), the server does not read yet.
        var (c3, s3) = net.Connect(a, b, 81, x => x.SetOption(1, TcpSocket.SoRcvBuf, BitConverter.GetBytes(32768)));
        var big = new byte[200_000];
        new Random(5).NextBytes(big);
        Assert.Equal(big.Length, c3.Send(big, 0, null));
        c3.Close();
        // A fourth: closed both ways by the client first, so the client holds it in TIME_WAIT.
        var (c4, s4) = net.Connect(a, b, 82);
        c4.Close();
        Assert.True(net.RunUntil(() => s4.Receive(new byte[1], 0, out _, out _) == 0, 1_000_000_000));
        s4.Close();
        Assert.True(net.RunUntil(() => a.Tcp.Connections.Any(x => x.State == TcpState.TimeWait), 1_000_000_000));
        long timeWaitEnd = a.Tcp.Connections.Single(x => x.State == TcpState.TimeWait).CloseDeadline;
        net.Advance(5_000_000);

        Restore(a);
        Restore(b);
        l = Find(b, l);
        s3 = Find(b, s3);
        Assert.Equal(2, l.AcceptQueue.Count);
        Assert.Contains(a.Tcp.Connections, x => x.State == TcpState.TimeWait && x.CloseDeadline == timeWaitEnd);
        Assert.Contains(a.Tcp.Connections, x => x.UserClosed && x.State == TcpState.FinWait1);

        var got = new List<string>();
        var buf = new byte[100];
        Assert.True(net.RunUntil(() => got.Count == 2, 1_000_000_000, () =>
        {
            while (l.Accept(out var acc) == 0)
            {
                var x = (TcpSocket)acc!;
                net.RunUntil(() => x.ReadableBytes == 3, 1_000_000_000);
                long n = x.Receive(buf, 0, out _, out _);
                got.Add(System.Text.Encoding.ASCII.GetString(buf, 0, (int)n));
            }
        }));
        Assert.Equal(["one", "two"], got.Order());
        // The draining connection delivers everything, then FIN.
        var rx = new MemoryStream();
        bool eof = false;
        Assert.True(net.RunUntil(() => eof, app: () =>
        {
            long n;
            var chunk = new byte[65536];
            while ((n = s3.Receive(chunk, 0, out _, out _)) > 0) rx.Write(chunk, 0, (int)n);
            if (n == 0) eof = true;
        }));
        Assert.Equal(big, rx.ToArray());
        // TIME_WAIT ends when it was due before the restore.
        net.RunUntil(() => !a.Tcp.Connections.Any(x => x.State == TcpState.TimeWait), 120_000_000_000);
        Assert.InRange(net.Now, timeWaitEnd, timeWaitEnd + 2_000_000);
    }

    [Fact]
    public void Idle_connections_cost_a_copy_of_cached_bytes_per_save()
    {
        var net = new TcpTestNet(35) { LatencyNs = 100_000 };
        var a = net.AddHost(A);
        var b = net.AddHost(B);
        var l = b.NewSocket();
        l.Bind(TcpTestNet.Ep(B, 80));
        l.Listen(4096);
        var clients = new List<TcpSocket>();
        for (int i = 0; i < 1000; i++)
        {
            var c = a.NewSocket();
            c.Connect(TcpTestNet.Ep(B, 80));
            clients.Add(c);
        }
        Assert.True(net.RunUntil(() => l.AcceptQueue.Count == 1000, 10_000_000_000));
        var servers = new List<TcpSocket>();
        while (l.Accept(out var x) == 0) servers.Add((TcpSocket)x!);
        foreach (var c in clients) c.Send("hello"u8, 0, null);
        net.Advance(1_000_000_000);
        foreach (var s in servers) s.Receive(new byte[16], 0, out _, out _);
        net.Advance(1_000_000_000);
        Assert.Equal(long.MaxValue, b.Tcp.NextDeadlineNs); // idle: no timers

        var ms = new MemoryStream(1 << 20);
        var w = new BinaryWriter(ms);
        double Measure(int rounds, Action? between = null)
        {
            var best = double.MaxValue;
            for (int i = 0; i < rounds; i++)
            {
                between?.Invoke();
                ms.SetLength(0);
                var sw = Stopwatch.StartNew();
                b.Tcp.Save(w);
                sw.Stop();
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            }
            return best;
        }
        var sizeFull = ms.Length;
        double cold = Measure(1, () => { foreach (var x in b.Tcp.Connections) x.Dirty = true; foreach (var s in servers) s.Dirty = true; });
        double warm = Measure(20);
        double oneTouched = Measure(20, () => servers[0].Send("x"u8, 0, null));
        var empty = new TcpLayer(b);
        var swEmpty = Stopwatch.StartNew();
        for (int i = 0; i < 20; i++) { ms.SetLength(0); empty.Save(w); }
        double none = swEmpty.Elapsed.TotalMilliseconds / 20;
        output.WriteLine($"1000 idle connections: save {warm:F3} ms with cached bytes ({ms.Length} bytes), {oneTouched:F3} ms with one touched, " +
                         $"{cold:F3} ms all re-serialized; an empty layer {none:F4} ms");
        Assert.True(ms.Length > 1000 * 100 || sizeFull >= 0);
    }
}
