using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Remus.Soak.Rounds;

/// <summary>
/// The harness's link between a primary and its backup: a TCP forwarder on loopback that the primary's
/// `protect --tcp` connects to and that connects on to the backup's `--tcp-listen`. It passes bytes both ways, notes
/// the records that go through (when a checkpoint was sent in full, when an ack came back), and can cut one
/// direction: it stops reading it, as a link that stopped carrying packets (the sender's TCP buffers fill, nothing
/// arrives, nothing is reset). The end of one side (FIN, reset) is passed on to the other unless that way is cut.
/// </summary>
internal sealed class ChannelRelay : IDisposable
{
    /// <summary>Record types of the stream format that the rounds watch (docs/stream-format.md §4).</summary>
    public const int CheckpointEnd = 4, Ack = 6, Release = 8, Released = 9, Takeover = 10;

    private readonly TcpListener _listener;
    private readonly int _backupPort;
    private readonly Thread _accept;
    private readonly ManualResetEventSlim _disposed = new();
    private readonly Lock _lock = new();
    private Socket? _primary, _backup;
    private volatile bool _forwardCut, _backCut;
    private long _forwardBytes;
    private readonly List<long> _endsAt = [];
    private int _checkpointEnds, _acks;
    private readonly List<string> _events = [];

    public ChannelRelay(int backupPort)
    {
        _backupPort = backupPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(1);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = new Thread(Accept) { IsBackground = true, Name = "relay-accept" };
        _accept.Start();
    }

    /// <summary>Where the primary connects.</summary>
    public int Port { get; }

    /// <summary>Called on the relay's thread just after a CHECKPOINT_END record went on to the backup whole.</summary>
    public event Action? CheckpointSent;

    public long ForwardBytes => Interlocked.Read(ref _forwardBytes);

    public int CheckpointEnds => Volatile.Read(ref _checkpointEnds);

    public int Acks => Volatile.Read(ref _acks);

    /// <summary>
    /// The longest time (ms) between two consecutive CHECKPOINT_ENDs among the last <paramref name="last"/> to pass:
    /// how long the last epochs were, as the channel saw them (from one checkpoint's end to the next).
    /// </summary>
    public double RecentEpochMs(int last)
    {
        lock (_lock)
        {
            double max = 0;
            for (int i = Math.Max(1, _endsAt.Count - last); i < _endsAt.Count; i++)
                max = Math.Max(max, Stopwatch.GetElapsedTime(_endsAt[i - 1], _endsAt[i]).TotalMilliseconds);
            return max;
        }
    }

    /// <summary>What went through and when (records other than pages), for failure reports.</summary>
    public string Events
    {
        get { lock (_lock) return string.Join(", ", _events.TakeLast(40)); }
    }

    /// <summary>Whether protection over this channel has ended: RELEASE or END went forward, RELEASED or TAKEOVER came back, or a side closed.</summary>
    public bool Ended => Volatile.Read(ref _ended);

    private bool _ended;

    /// <summary>Stops carrying primary -> backup (the stream) or backup -> primary (acks, TAKEOVER, RELEASED).</summary>
    public void Cut(bool forward)
    {
        if (forward) _forwardCut = true;
        else _backCut = true;
        Note(forward ? "cut primary->backup" : "cut backup->primary");
    }

    private readonly long _t0 = Stopwatch.GetTimestamp();

    private void Note(string what)
    {
        lock (_lock) _events.Add($"{Stopwatch.GetElapsedTime(_t0).TotalMilliseconds:F0}ms {what}");
    }

    private void Accept()
    {
        try
        {
            var primary = _listener.AcceptSocket();
            _listener.Stop(); // one channel per round
            var backup = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            primary.NoDelay = true;
            try { backup.Connect(IPAddress.Loopback, _backupPort); }
            catch (SocketException)
            {
                primary.Close(0);
                backup.Dispose();
                return;
            }
            lock (_lock)
            {
                if (_disposed.IsSet) { primary.Dispose(); backup.Dispose(); return; }
                _primary = primary;
                _backup = backup;
            }
            Note("connected");
            var forward = new FrameScanner(forward: true);
            forward.Record += type =>
            {
                if (type != CheckpointEnd)
                {
                    if (type is 0 or Release) Volatile.Write(ref _ended, true);
                    if (type != 1) Note($"-> {Name(type)}");
                    return;
                }
                lock (_lock) _endsAt.Add(Stopwatch.GetTimestamp());
                Interlocked.Increment(ref _checkpointEnds);
            };
            var back = new FrameScanner(forward: false);
            back.Record += type =>
            {
                if (type == Ack) Interlocked.Increment(ref _acks);
                else Note($"<- {Name(type)}");
                if (type is 0 or Released or Takeover) Volatile.Write(ref _ended, true);
            };
            var up = new Thread(() => Pump(primary, backup, forward, isForward: true)) { IsBackground = true, Name = "relay-forward" };
            var down = new Thread(() => Pump(backup, primary, back, isForward: false)) { IsBackground = true, Name = "relay-back" };
            up.Start();
            down.Start();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // disposed before the primary came
        }
    }

    private static string Name(int type) => type switch
    {
        0 => "END", 2 => "VCPU_STATE", 3 => "KERNEL_STATE", 4 => "CHECKPOINT_END", 5 => "HEARTBEAT", 6 => "ACK", 7 => "HELLO",
        8 => "RELEASE", 9 => "RELEASED", 10 => "TAKEOVER", 11 => "EXIT", 12 => "VOLUME_OPS", _ => $"type {type}",
    };

    private void Pump(Socket from, Socket to, FrameScanner scanner, bool isForward)
    {
        var buffer = new byte[1 << 16];
        try
        {
            while (true)
            {
                if (isForward ? _forwardCut : _backCut) break;
                int n = from.Receive(buffer);
                if (isForward ? _forwardCut : _backCut) break; // what was read after the cut is lost, as on the wire
                if (n == 0)
                {
                    Note(isForward ? "primary closed" : "backup closed");
                    Volatile.Write(ref _ended, true);
                    try { to.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
                    return;
                }
                int ends = isForward ? CheckpointEnds : 0;
                to.Send(buffer.AsSpan(0, n));
                if (isForward) Interlocked.Add(ref _forwardBytes, n);
                scanner.Feed(buffer.AsSpan(0, n));
                if (isForward && CheckpointEnds != ends) CheckpointSent?.Invoke();
            }
            // Cut: nothing more is read from this side until the end of the round.
            _disposed.Wait();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // One side reset or went away: pass it on (a reset) unless this way is cut.
            if (!(isForward ? _forwardCut : _backCut))
            {
                Note($"{(isForward ? "forward" : "back")} pump: {e.Message}");
                Volatile.Write(ref _ended, true);
                try { from.Close(0); } catch (SocketException) { } catch (ObjectDisposedException) { }
                try { to.Close(0); } catch (SocketException) { } catch (ObjectDisposedException) { }
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed.Set();
            try { _listener.Stop(); } catch (SocketException) { }
            _primary?.Close(0);
            _backup?.Close(0);
        }
    }
}
