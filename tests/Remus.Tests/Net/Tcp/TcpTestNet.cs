using Xunit;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Remus.Sandbox.Net.Tcp;

namespace Remus.Tests.Net.Tcp;

/// <summary>
/// A deterministic network for TCP layers: an in-memory IPv4 "layer" per host, a clock the test drives, and a seeded
/// link that can lose, reorder, duplicate and corrupt segments. <see cref="Step"/> jumps the clock to the next packet
/// or timer, so minutes of TCP time take milliseconds.
/// </summary>
internal sealed class TcpTestNet
{
    public long Now;
    public readonly Random Rng;
    public double Loss, Reorder, Duplicate, Corrupt;
    public long LatencyNs = 1_000_000;
    public int Mtu = 1500;
    /// <summary>When set, a segment for which it returns true is dropped (after the random faults).</summary>
    public Func<IPv4Address, IPv4Address, byte[], bool>? Drop;
    public long Delivered, Dropped;

    private readonly Dictionary<IPv4Address, Host> _hosts = [];
    private readonly PriorityQueue<(IPv4Address Src, IPv4Address Dst, byte[] Data), (long, long)> _wire = new();
    private long _order;
    private int _nextSocketId = 1;

    public TcpTestNet(int seed) => Rng = new Random(seed);

    public sealed class Host(TcpTestNet net, IPv4Address address) : IIpLayer
    {
        public IPv4Address Address { get; } = address;
        public TcpLayer Tcp { get; set; } = null!;
        public long NowNs => net.Now;
        public long Send(IPv4Address source, IPv4Address destination, byte protocol, ReadOnlySpan<byte> payload, byte tos = 0, byte ttl = 64, bool dontFragment = true)
        {
            if (payload.Length + 20 > MtuFor(destination)) return -90;
            net.Transmit(source, destination, payload.ToArray());
            return 0;
        }
        public IPv4Address? SourceFor(IPv4Address destination) => Address;
        public int MtuFor(IPv4Address destination) => net.Mtu;
        public bool IsLocal(IPv4Address address) => address == Address || address.IsLoopback;
        public int NewSocketId() => net._nextSocketId++;
        public void DeadlineChanged() { }

        public TcpSocket NewSocket()
        {
            Tcp.CreateSocket(NewSocketId(), out var s);
            return (TcpSocket)s!;
        }
    }

    public Host AddHost(IPv4Address address)
    {
        var h = new Host(this, address);
        h.Tcp = new TcpLayer(h);
        _hosts[address] = h;
        return h;
    }

    private void Transmit(IPv4Address src, IPv4Address dst, byte[] data)
    {
        if (Loss > 0 && Rng.NextDouble() < Loss) { Dropped++; return; }
        if (Drop != null && Drop(src, dst, data)) { Dropped++; return; }
        if (Corrupt > 0 && Rng.NextDouble() < Corrupt) data[Rng.Next(data.Length)] ^= (byte)(1 + Rng.Next(255));
        long at = Now + LatencyNs;
        if (Reorder > 0 && Rng.NextDouble() < Reorder) at += Rng.NextInt64(LatencyNs * 3);
        _wire.Enqueue((src, dst, data), (at, _order++));
        if (Duplicate > 0 && Rng.NextDouble() < Duplicate) _wire.Enqueue((src, dst, (byte[])data.Clone()), (at + Rng.NextInt64(LatencyNs), _order++));
    }

    /// <summary>Advances to the next packet or timer and handles everything due then; false when nothing is pending.</summary>
    public bool Step()
    {
        long next = long.MaxValue;
        if (_wire.TryPeek(out _, out var p)) next = p.Item1;
        foreach (var h in _hosts.Values) next = Math.Min(next, h.Tcp.NextDeadlineNs);
        if (next == long.MaxValue) return false;
        Now = Math.Max(Now, next);
        while (_wire.TryPeek(out var pkt, out var pr) && pr.Item1 <= Now)
        {
            _wire.Dequeue();
            if (_hosts.TryGetValue(pkt.Dst, out var h))
            {
                Delivered++;
                h.Tcp.Receive(pkt.Src, pkt.Dst, pkt.Data, 0);
            }
        }
        foreach (var h in _hosts.Values)
            if (h.Tcp.NextDeadlineNs <= Now) h.Tcp.RunTimers(Now);
        return true;
    }

    /// <summary>Steps until <paramref name="done"/> (checked before each step, with <paramref name="app"/> run first) or the time limit.</summary>
    public bool RunUntil(Func<bool> done, long maxNs = 600_000_000_000, Action? app = null)
    {
        long end = Now + maxNs;
        for (int i = 0; i < 50_000_000; i++)
        {
            app?.Invoke();
            if (done()) return true;
            if (Now > end) return false;
            if (!Step())
            {
                app?.Invoke();
                return done();
            }
        }
        return false;
    }

    /// <summary>Runs the clock forward by <paramref name="ns"/>, handling everything on the way.</summary>
    public void Advance(long ns, Action? app = null)
    {
        long end = Now + ns;
        RunUntil(() => false, ns, app);
        Now = Math.Max(Now, end);
    }

    public int PendingOnWire => _wire.Count;

    public static NetEndpoint Ep(IPv4Address a, int port) => new(a, (ushort)port);

    /// <summary>Connects a client socket on <paramref name="c"/> to a listener on <paramref name="s"/>; returns (client, accepted).</summary>
    public (TcpSocket Client, TcpSocket Server) Connect(Host c, Host s, int port = 80, Action<TcpSocket>? configure = null)
    {
        var l = s.NewSocket();
        configure?.Invoke(l);
        Assert.Equal(0, l.Bind(Ep(s.Address, port)));
        Assert.Equal(0, l.Listen(16));
        var cl = c.NewSocket();
        configure?.Invoke(cl);
        Assert.Equal(-TcpErrno.EINPROGRESS, cl.Connect(Ep(s.Address, port)));
        IInetSocket? accepted = null;
        Assert.True(RunUntil(() => accepted != null && (cl.Readiness() & PollEvents.Out) != 0,
            app: () => { if (accepted == null) l.Accept(out accepted); }));
        Assert.Equal(0, cl.TakeError());
        return (cl, (TcpSocket)accepted!);
    }
}
