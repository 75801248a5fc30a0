using System.Text;
using Remus.Sandbox;

namespace Remus.Simulation;

/// <summary>
/// A simulated guest behind the engine's narrow domain interface. Its own thread, while not paused, runs steps: each
/// reads the counter <c>n</c> from its counter page, writes the line <c>n=&lt;n&gt; run=&lt;nonce&gt; &lt;payload&gt;</c>
/// through the console it was given, writes its hot page and a seeded set of other pages (<see cref="GuestImage"/>),
/// and stores <c>n+1</c>. A step is atomic with respect to <see cref="Pause"/>: the thread stops only between
/// steps, and Pause returns only once it has. The nonce is fresh for every execution start (the original run, a
/// takeover), while the payload depends on <c>n</c> alone: a re-executed step prints a different line, so a
/// rollback of released output is visible in what the world saw.
/// </summary>
public sealed partial class SimDomain : ICheckpointable
{
    private readonly GuestConfig _config;
    private readonly IConsole _console;
    private readonly object _lock = new();
    private DomainState _state = DomainState.Created;
    private bool _pauseRequested, _frozen, _killed;
    private bool _parked = true; // the thread is between steps (or not started)
    private Thread? _thread;
    private ulong _nonce;
    private long? _exitedAt;
    private long _progress;

    private SimDomain(GuestConfig config, IConsole console)
    {
        _config = config;
        _console = console;
        _memory = new byte[config.Pages * GuestImage.PageSize];
        _words = (config.Pages + 63) / 64;
        _dirty = new ulong[_words];
        _untracked = new ulong[_words];
        _populated = new ulong[_words];
    }

    /// <summary>A guest that starts from n=0 now (the primary's original run).</summary>
    public static SimDomain Boot(GuestConfig config, IConsole console, ulong nonce)
    {
        var d = new SimDomain(config, console);
        d.StoreCounter(0);
        d._vcpu = new Registers(0);
        d.Start(nonce);
        return d;
    }

    /// <summary>An empty guest to be filled from a checkpoint (the backup's), started by <see cref="StartTakeover"/>.</summary>
    public static SimDomain CreateIncoming(GuestConfig config, IConsole console) => new(config, console);

    public GuestConfig Config => _config;

    public DomainState State
    {
        get { lock (_lock) return _state; }
    }

    /// <summary>The counter in the guest's memory: the next line's n.</summary>
    public ulong Counter => GuestImage.ReadCounter(_memory.AsSpan(GuestImage.CounterPage * GuestImage.PageSize, GuestImage.PageSize), _config) ?? ulong.MaxValue;

    /// <summary>The counter as the guest last stored it (readable while it runs; <see cref="Counter"/> is not).</summary>
    public long Progress => Volatile.Read(ref _progress);

    /// <summary>The counter at which the guest exited by itself (not killed), if it did.</summary>
    public long? ExitedAt
    {
        get { lock (_lock) return _exitedAt; }
    }

    /// <summary>Starts a restored guest (failover) with a fresh nonce; a guest whose checkpoint says it exited stays exited.</summary>
    public void StartTakeover(ulong nonce)
    {
        Volatile.Write(ref _progress, (long)Counter);
        if (_loadedExited)
        {
            lock (_lock) _state = DomainState.Exited;
            return;
        }
        Start(nonce);
    }

    private void Start(ulong nonce)
    {
        lock (_lock)
        {
            if (_killed || _thread != null) return;
            _nonce = nonce;
            _state = _pauseRequested ? DomainState.Paused : DomainState.Running;
            _thread = new Thread(Run) { IsBackground = true, Name = "sim-guest" };
            _thread.Start();
        }
    }

    public void Pause()
    {
        lock (_lock)
        {
            if (_state == DomainState.Exited) return;
            _pauseRequested = true;
            Monitor.PulseAll(_lock);
            while (!_parked && _state != DomainState.Exited) Monitor.Wait(_lock);
            if (_state != DomainState.Exited) _state = DomainState.Paused;
        }
    }

    public void Unpause()
    {
        lock (_lock)
        {
            if (_state == DomainState.Exited) return;
            _pauseRequested = false;
            if (_thread != null) _state = DomainState.Running;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>SIGSTOP/SIGCONT of the whole VMM: the guest stops between steps, independently of Pause.</summary>
    public void Freeze(bool frozen)
    {
        lock (_lock)
        {
            _frozen = frozen;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The guest dies with its host: no step after the one in progress.</summary>
    public void Kill()
    {
        lock (_lock)
        {
            _killed = true;
            _state = DomainState.Exited;
            Monitor.PulseAll(_lock);
        }
    }

    public void Dispose()
    {
        Kill();
        Thread? t;
        lock (_lock) t = _thread;
        if (t != null && t != Thread.CurrentThread) t.Join(TimeSpan.FromSeconds(5));
    }

    private void Run()
    {
        int sinceTick = 0;
        while (true)
        {
            lock (_lock)
            {
                while ((_pauseRequested || _frozen) && !_killed)
                {
                    _parked = true;
                    Monitor.PulseAll(_lock);
                    Monitor.Wait(_lock);
                }
                if (_killed)
                {
                    _parked = true;
                    Monitor.PulseAll(_lock);
                    return;
                }
                _parked = false;
            }
            bool exited = Step();
            lock (_lock)
            {
                if (exited)
                {
                    _exitedAt = (long)Counter - 1;
                    _state = DomainState.Exited;
                    _parked = true;
                    Monitor.PulseAll(_lock);
                    return;
                }
                if (++sinceTick >= _config.StepsPerTick)
                {
                    sinceTick = 0;
                    _parked = true; // a sleep is a safe point too
                    Monitor.PulseAll(_lock);
                    if (!_pauseRequested && !_frozen && !_killed) Monitor.Wait(_lock, 1);
                }
            }
        }
    }

    /// <summary>One step: the line for n, the pages, n+1. True when that was the guest's last line.</summary>
    private bool Step()
    {
        ulong n = Counter;
        bool last = _config.ExitAt >= 0 && n >= (ulong)_config.ExitAt;
        _console.Write(1, Encoding.ASCII.GetBytes(Line(n, _nonce, _config)));
        WritePagesOfStep(n);
        StoreCounter(n + 1);
        _vcpu = new Registers(n + 1);
        Volatile.Write(ref _progress, (long)n + 1);
        _kernel = _kernel with { ConsoleWrites = _kernel.ConsoleWrites + 1, Exited = last };
        return last;
    }

    /// <summary>The line the guest prints for <paramref name="n"/> in the run <paramref name="nonce"/>.</summary>
    public static string Line(ulong n, ulong nonce, GuestConfig config)
    {
        ulong h = SimHash.Of(config.Seed, n, 0xC0FFEE);
        int length = (int)(h % 24);
        var payload = new StringBuilder(length + 8);
        for (int i = 0; i < length; i++) payload.Append((char)('a' + (int)(SimHash.Of(h, (ulong)i) % 26)));
        bool final = config.ExitAt >= 0 && (long)n > config.ExitAt - config.FinalLines;
        return $"n={n} run={nonce:x8} {(final ? "exiting " : "")}{payload}\n";
    }
}
