namespace Remus.Sandbox.Net.Tcp;

/// <summary>One bound local address and port: a socket's, or a connection's that outlives its socket.</summary>
internal sealed class PortBinding(NetEndpoint local, bool reuseAddress, bool reusePort)
{
    public NetEndpoint Local { get; set; } = local;
    public bool ReuseAddress { get; set; } = reuseAddress;
    public bool ReusePort { get; set; } = reusePort;
    public TcpSocket? Socket { get; set; }
    public TcpControlBlock? Connection { get; set; }

    public bool Listening => Socket is { IsListening: true };
    public bool TimeWait => Connection is { State: TcpState.TimeWait } && Socket is null;
}

/// <summary>
/// TCP's bound ports (Linux bind-bucket rules, simplified): two bindings of a port conflict when their addresses
/// overlap unless both have SO_REUSEPORT, or both SO_REUSEADDR and the older is not listening, or the newer has
/// SO_REUSEADDR and the older is in TIME_WAIT. Ephemeral ports come from 32768-60999.
/// </summary>
internal sealed class PortTable
{
    public const int EphemeralFirst = 32768, EphemeralLast = 60999;
    private readonly Dictionary<ushort, List<PortBinding>> _ports = [];
    private int _cursor;

    public int Count { get; private set; }

    public IEnumerable<PortBinding> On(ushort port) => _ports.TryGetValue(port, out var l) ? l : [];

    public bool Conflicts(NetEndpoint local, bool reuseAddress, bool reusePort, bool listening, PortBinding? except = null)
    {
        if (!_ports.TryGetValue(local.Port, out var list)) return false;
        foreach (var b in list)
        {
            if (b == except) continue;
            if (!(b.Local.Address.IsAny || local.Address.IsAny || b.Local.Address == local.Address)) continue;
            if (reusePort && b.ReusePort) continue;
            if (reuseAddress && b.ReuseAddress && !b.Listening && !listening) continue;
            if (reuseAddress && b.TimeWait) continue;
            if (listening && !b.Listening && reuseAddress && b.ReuseAddress) continue;
            return true;
        }
        return false;
    }

    public void Clear()
    {
        _ports.Clear();
        Count = 0;
    }

    public void Add(PortBinding b)
    {
        if (!_ports.TryGetValue(b.Local.Port, out var list)) _ports[b.Local.Port] = list = [];
        list.Add(b);
        Count++;
    }

    public void Remove(PortBinding b)
    {
        if (_ports.TryGetValue(b.Local.Port, out var list) && list.Remove(b))
        {
            Count--;
            if (list.Count == 0) _ports.Remove(b.Local.Port);
        }
    }

    /// <summary>A free ephemeral port for <paramref name="address"/>, or 0 when all are taken.</summary>
    public ushort Ephemeral(IPv4Address address, uint start, bool reuseAddress)
    {
        const int range = EphemeralLast - EphemeralFirst + 1;
        for (int i = 0; i < range; i++)
        {
            var port = (ushort)(EphemeralFirst + (int)((start + (uint)_cursor + (uint)i) % range));
            if (!_ports.ContainsKey(port))
            {
                _cursor += i + 1;
                return port;
            }
        }
        _ = reuseAddress;
        return 0;
    }

    public int Cursor { get => _cursor; set => _cursor = value; }
}
