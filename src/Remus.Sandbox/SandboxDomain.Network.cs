using Remus.Sandbox.Net;
using Remus.Sandbox.Platform.Net;

namespace Remus.Sandbox;

/// <summary>
/// The domain's network interface on the host (issue 9): the tap device its [network] table names, created where it
/// says (a namespace, a bridge, an address for the host side), and two threads that drive the domain's TCP/IP stack
/// from outside the program: the <b>pump</b> hands each inbound frame to <see cref="NetStack.ReceiveFrame"/>, the
/// <b>timer</b> runs <see cref="NetStack.RunTimers"/> at <see cref="NetStack.NextDeadlineNs"/>. Both enter the stack
/// only through the same gate as the vCPUs: never while the domain is paused (so a pause or a checkpoint sees a frozen
/// stack; frames arriving meanwhile wait in the tap's queue and are taken up after the resume), never before it runs,
/// never after it ended. Outbound frames go to the <see cref="NetworkWire"/> (the tap) — or through what
/// <see cref="RouteOutbound"/> set (output commit's hold, which releases into the wire).
/// </summary>
public sealed partial class SandboxDomain
{
    /// <summary>Frames the wire keeps while no tap is attached yet (a domain taking over, waiting for its tap's name).</summary>
    private const int PendingFrameLimit = 1024;

    private readonly TapWire _wire = new();
    private INetLink? _route;
    private TapDevice? _tap;
    private Thread? _netPump, _netTimer;
    private bool _netStop;          // under _lock
    private int _netBusy;           // under _lock: network threads inside the stack
    private bool _announcePending;  // under _lock: a gratuitous ARP is due once the stack may run
    private readonly AutoResetEvent _netWake = new(false);
    private long _netErrors;

    /// <summary>
    /// Where frames leave for the world: the tap, once connected (frames sent before are kept, up to 1024, and go out
    /// when it is). Null when the domain has no [network].
    /// </summary>
    public INetLink? NetworkWire => Spec.Network == null ? null : _wire;

    /// <summary>The tap device, once connected (null before, after <see cref="Dispose"/>, and without [network]).</summary>
    public string? TapName => _tap?.Name;

    /// <summary>
    /// Sends the stack's outbound frames to <paramref name="link"/> instead of straight to <see cref="NetworkWire"/>
    /// (output commit: the link holds them per epoch and releases them into the wire). Null: straight to the wire.
    /// </summary>
    public void RouteOutbound(INetLink? link)
    {
        if (Spec.Network == null) return;
        lock (_kernel.KernelLock)
        {
            _route = link;
            _kernel.Net.AttachLink(link ?? _wire);
        }
    }

    /// <summary>The stack's link and timer hook, on a domain with [network] (at build).</summary>
    private void PrepareNetwork()
    {
        if (Spec.Network == null) return;
        lock (_kernel.KernelLock)
        {
            _kernel.Net.AttachLink(_route ?? _wire);
            _kernel.Net.DeadlineMoved = () => _netWake.Set();
        }
    }

    /// <summary>
    /// Creates and configures the tap (retrying up to <paramref name="patience"/> while its name is still held, as by
    /// the VMM this domain came from on the same host), then starts the pump and timer threads; with
    /// <paramref name="announce"/>, a gratuitous ARP goes out once the domain runs. A failure is one
    /// <see cref="SandboxException"/> line and leaves nothing behind. Nothing to do without [network].
    /// </summary>
    public void ConnectNetwork(TimeSpan patience, bool announce)
    {
        var net = Spec.Network;
        if (net == null) return;
        if (_tap != null) throw new InvalidOperationException("the network is already connected");
        var tap = patience > TimeSpan.Zero ? TapDevice.CreateRetrying(net.Tap, net.Netns, patience) : TapDevice.Create(net.Tap, net.Netns);
        try
        {
            using var ctl = InterfaceControl.Open(net.Netns);
            if (net.HostAddress is { } host) ctl.SetAddress(net.Tap, host, net.HostPrefixLength);
            if (net.Bridge is { } bridge) ctl.AttachToBridge(bridge, net.Tap);
            ctl.SetUp(net.Tap);
        }
        catch
        {
            tap.Dispose();
            throw;
        }
        lock (_lock)
        {
            if (_disposed || _netStop)
            {
                tap.Dispose();
                throw new InvalidOperationException("the domain is gone");
            }
            _tap = tap;
            _announcePending = announce;
        }
        _wire.Attach(tap);
        _netPump = new Thread(NetPump) { Name = $"net-pump {net.Tap}", IsBackground = true };
        _netTimer = new Thread(NetTimers) { Name = $"net-timers {net.Tap}", IsBackground = true };
        _netPump.Start();
        _netTimer.Start();
        _netWake.Set();
        Log?.Invoke($"network: tap {tap}{(net.HostAddress is { } h ? $", host side {h}/{net.HostPrefixLength}" : "")}" +
                    $"{(net.Bridge is { } b ? $", bridge {b}" : "")}; domain {net.Address}/{net.PrefixLength} mac {net.Mac}");
    }

    /// <summary>
    /// <see cref="ConnectNetwork"/> on a thread of its own, so that the domain can run meanwhile (a migrated domain's
    /// source keeps its tap until it learns the target runs). Failure goes to <see cref="Log"/> (the domain runs on
    /// with its frames dropped).
    /// </summary>
    public void ConnectNetworkInBackground(TimeSpan patience, bool announce, Action<string>? failed = null)
    {
        if (Spec.Network == null) return;
        new Thread(() =>
        {
            try
            {
                ConnectNetwork(patience, announce);
            }
            catch (Exception e) when (e is SandboxException or InvalidOperationException)
            {
                _wire.Detach(); // the frames kept for the tap go, and the next ones are dropped as on a cut wire
                Log?.Invoke($"network: {e.Message}; the domain runs without its interface");
                failed?.Invoke(e.Message);
            }
        }) { Name = "net-connect", IsBackground = true }.Start();
    }

    /// <summary>Under <see cref="_lock"/>: whether the stack may run (the vCPUs run, or would).</summary>
    private bool NetMayRun => _go && !_pauseRequested && !_killRequested && !_groupExit && _state != DomainState.Exited;

    /// <summary>Waits at the gate; false when the network is stopping.</summary>
    private bool EnterNet()
    {
        lock (_lock)
        {
            while (!_netStop && !NetMayRun) Monitor.Wait(_lock);
            if (_netStop) return false;
            _netBusy++;
            return true;
        }
    }

    private void LeaveNet()
    {
        lock (_lock)
        {
            _netBusy--;
            if (_pauseRequested && _state == DomainState.Running && AllParked()) _state = DomainState.Paused;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// Reads a burst of frames (what the tap has, up to 32) outside every lock, then hands them to the stack under one
    /// kernel lock, through the gate: the vCPUs wait for the stack at most one burst's processing, not its reads.
    /// </summary>
    private void NetPump()
    {
        const int MaxFrame = 64 * 1024, Burst = 32;
        var tap = _tap!;
        var buffer = new byte[2 * MaxFrame];
        Span<int> lengths = stackalloc int[Burst];
        while (true)
        {
            int n = tap.ReadFrame(buffer.AsSpan(0, MaxFrame));
            if (n == 0) return;
            lengths[0] = n;
            int count = 1, used = n;
            while (count < Burst && buffer.Length - used >= MaxFrame && (n = tap.ReadFrame(buffer.AsSpan(used, MaxFrame), timeoutMs: 0)) > 0)
            {
                lengths[count++] = n;
                used += n;
            }
            if (!EnterNet()) return;
            try
            {
                lock (_kernel.KernelLock)
                {
                    for (int i = 0, at = 0; i < count; at += lengths[i], i++)
                        Receive(buffer.AsSpan(at, lengths[i]));
                }
            }
            finally
            {
                LeaveNet();
            }
        }
    }

    /// <summary>Under the kernel lock: one inbound frame into the stack; a failure there is logged, not fatal.</summary>
    private void Receive(ReadOnlySpan<byte> frame)
    {
        try
        {
            _kernel.Net.ReceiveFrame(frame);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            NetError("receiving a frame", e);
        }
    }

    /// <summary>
    /// Runs the stack's due timers (and a pending announcement), then sleeps until its next deadline or until
    /// <see cref="NetStack.DeadlineMoved"/> wakes it. The deadline is read inside the gate too: nothing of the stack is
    /// touched while the domain is paused.
    /// </summary>
    private void NetTimers()
    {
        while (true)
        {
            if (!EnterNet()) return; // a paused domain's timers (and a pending announcement) wait here
            long waitMs;
            try
            {
                lock (_kernel.KernelLock)
                {
                    bool announce;
                    lock (_lock)
                    {
                        announce = _announcePending;
                        _announcePending = false;
                    }
                    if (announce)
                    {
                        try { _kernel.Net.AnnounceAddress(); }
                        catch (Exception e) when (e is not OutOfMemoryException) { NetError("announcing the address", e); }
                    }
                    long now = _kernel.Clock.MonotonicNs;
                    if (_kernel.Net.NextDeadlineNs <= now)
                    {
                        try { _kernel.Net.RunTimers(); }
                        catch (Exception e) when (e is not OutOfMemoryException) { NetError("running the stack's timers", e); }
                    }
                    long deadline = _kernel.Net.NextDeadlineNs;
                    long left = deadline == long.MaxValue ? long.MaxValue : deadline - _kernel.Clock.MonotonicNs;
                    // A deadline still due after its timers ran (a stack that failed to move it) must not spin: 1 ms.
                    waitMs = left == long.MaxValue ? -1 : Math.Clamp(left / 1_000_000 + (left % 1_000_000 > 0 ? 1 : 0), 1, int.MaxValue - 1);
                }
            }
            finally
            {
                LeaveNet();
            }
            _netWake.WaitOne((int)waitMs); // woken early by DeadlineMoved, a new announcement, or to stop
        }
    }

    private void NetError(string what, Exception e)
    {
        // The first few in full, then one in a thousand: a stack bug must not flood the log or stop the domain.
        long n = Interlocked.Increment(ref _netErrors);
        if (n <= 5 || n % 1000 == 0) Log?.Invoke($"network: error {n} {what}: {e.GetType().Name}: {e.Message}");
    }

    /// <summary>Stops the pump and timer threads and closes the tap (the kernel deletes it). Idempotent.</summary>
    private void DisconnectNetwork()
    {
        TapDevice? tap;
        lock (_lock)
        {
            _netStop = true;
            tap = _tap;
            _tap = null;
            Monitor.PulseAll(_lock);
        }
        _wire.Detach();
        tap?.Interrupt();
        _netWake.Set();
        if (_netPump != null && _netPump != Thread.CurrentThread) _netPump.Join();
        if (_netTimer != null && _netTimer != Thread.CurrentThread) _netTimer.Join();
        tap?.Dispose();
    }

    /// <summary>
    /// The wire side of the interface: frames written here go to the tap. Before a tap is attached they are kept (up
    /// to <see cref="PendingFrameLimit"/>, as a NIC's queue would) and go out, in order, once it is; after it is
    /// detached they are dropped.
    /// </summary>
    private sealed class TapWire : INetLink
    {
        private readonly Lock _lock = new();
        private readonly Queue<byte[]> _pending = new();
        private TapDevice? _tap;
        private bool _closed;

        public long Dropped { get; private set; }

        public void SendFrame(ReadOnlySpan<byte> frame)
        {
            lock (_lock)
            {
                if (_tap != null) _tap.WriteFrame(frame);
                else if (!_closed && _pending.Count < PendingFrameLimit) _pending.Enqueue(frame.ToArray());
                else Dropped++;
            }
        }

        public void Attach(TapDevice tap)
        {
            lock (_lock)
            {
                while (_pending.TryDequeue(out var frame)) tap.WriteFrame(frame);
                _tap = tap;
            }
        }

        public void Detach()
        {
            lock (_lock)
            {
                _tap = null;
                _closed = true;
                _pending.Clear();
            }
        }
    }
}
