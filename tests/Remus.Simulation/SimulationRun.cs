using System.Diagnostics;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;

namespace Remus.Simulation;

/// <summary>
/// One seed's run: the real <see cref="RemusPrimary"/> protecting a <see cref="SimDomain"/> through a real
/// <see cref="OutputCommitConsole"/>, the real <see cref="RemusBackup"/> watching, over two <see cref="SimPipe"/>s,
/// with the scenario's fault injected at its step, byte or moment. The harness plays the hosts around the engine as
/// the toolstack does (a failed Protect or the end of protection closes the channel; a backup whose watch says
/// <see cref="BackupOutcome.Failover"/> re-emits the last epoch's output and runs the guest; any other outcome, known
/// or new, does not take over), waits for the outcome with a bound on everything, and checks the guarantee.
/// </summary>
public sealed partial class SimulationRun
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(60);

    private readonly Scenario _s;
    private readonly Mutation _mutation;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly EventLog _trace;
    private readonly World _world;
    private readonly Node _primary, _backup;
    private readonly SimPipe _epochs, _acks;
    private readonly OutputCommitConsole _commit;
    private readonly SimDomain _guest;
    private readonly RemusPrimary _remus;
    private readonly RemusBackup _watcher;
    private readonly List<long> _boundaries = [];
    private readonly List<string> _violations = [];
    private readonly ManualResetEventSlim _stopping = new();
    private readonly uint _nonce1, _nonce2;
    private long _firstCheckpoint = -1;
    private readonly IReadOnlyList<Scenario> _faults;
    private readonly int[] _fired;
    private int _primaryDisposed;
    private double _quietAfterMs;
    private double _protectedAtMs;
    private volatile bool _protectFailed, _backupDone, _aborted;
    private volatile SimDomain? _takeover;
    private long _releasedAtTakeover = -1;
    private string _outcome = "none";
    private readonly object _stallLock = new();
    private double _machineStallMs, _poolProbeSentMs = -1;
    private (RemusStep Step, double EndMs)? _lastPrimaryStep, _lastBackupStep;

    public static SimulationResult Execute(Scenario scenario, Mutation mutation = Mutation.None) => new SimulationRun(scenario, mutation).Run();

    private SimulationRun(Scenario scenario, Mutation mutation)
    {
        _s = scenario;
        _faults = scenario.Faults;
        _fired = new int[_faults.Count];
        _mutation = mutation;
        _trace = new EventLog(_clock);
        _world = new World(_clock);
        _primary = new Node("primary", Source.Primary, _world, _trace);
        _backup = new Node("backup", Source.Backup, _world, _trace);
        _epochs = new SimPipe("epochs", _primary, _backup);
        _acks = new SimPipe("acks", _backup, _primary);
        _nonce1 = (uint)SimHash.Of((ulong)scenario.Seed, 1);
        _nonce2 = (uint)SimHash.Of((ulong)scenario.Seed, 2);
        if (_nonce2 == _nonce1) _nonce2 ^= 1;

        _commit = new OutputCommitConsole(_primary.View);
        IConsole guestConsole = mutation == Mutation.GuestBypassesOutputCommit ? _primary.View : _commit;
        _guest = SimDomain.Boot(scenario.Guest, guestConsole, _nonce1);
        _primary.Domain = _guest;
        _trace.Add("primary", $"guest boots (run={_nonce1:x8})");

        var options = new RemusOptions
        {
            Interval = scenario.Interval, Timeout = scenario.Timeout, HotPageEpochs = scenario.HotPageEpochs, Compress = scenario.Compress,
        };
        _remus = new RemusPrimary(_guest, _commit, _epochs.Writer, _acks.Reader, options with { OnStep = (s, e) => OnStep(_primary, s, e) });
        _remus.Unprotected += reason => _trace.Add("primary", $"unprotected: {reason}");
        _watcher = new RemusBackup(_epochs.Reader, _acks.Writer, options with { OnStep = (s, e) => OnStep(_backup, s, e) },
            m => _trace.Add("backup", m));
    }

    private double Now => _clock.Elapsed.TotalMilliseconds;

    private long? FirstCheckpoint => Interlocked.Read(ref _firstCheckpoint) is var f and >= 0 ? f : null;

    private SimulationResult Run()
    {
        using var safety = new Timer(_ => Abort($"hang: the run did not end within {HardLimit.TotalSeconds:F0} s"), null, HardLimit, Timeout.InfiniteTimeSpan);
        ArmStreamFaults();
        var ticker = new Thread(Tick) { IsBackground = true, Name = "sim-ticker" };
        ticker.Start();
        Thread.Sleep(_s.HeadStart);
        // The receiver starts as the channel opens, just before the primary writes the header (its watchdog counts from here).
        var backupThread = new Thread(BackupDriver) { IsBackground = true, Name = "sim-backup" };
        backupThread.Start();
        try
        {
            _remus.Protect(_s.Guest.ToJson());
            _trace.Add("primary", "protected");
        }
        catch (Exception e)
        {
            _protectFailed = true;
            // A crash the harness injected into the primary surfaces as RemusCrashException (the hook threw): legitimate
            // exactly when the primary node is down; any other exception, or that one with the primary alive, is a bug.
            bool injectedCrash = e is RemusCrashException && _primary.Dead;
            if (e is not ProtectionException && !injectedCrash)
                AddViolation($"Protect threw {e.GetType().Name} (not a ProtectionException){(e is RemusCrashException ? " with the primary alive" : "")}: {e.Message}");
            _trace.Add("primary", $"protect failed: {e.Message}");
            if (!_primary.Dead) EndProtectionLikeTheHost();
        }
        _protectedAtMs = Now;
        var timed = _faults.Select((f, i) => (f, i)).Where(x => IsTimed(x.f))
            .Select(x => new Thread(() => TimedFault(x.i, x.f)) { IsBackground = true, Name = "sim-fault" }).ToList();
        timed.ForEach(t => t.Start());
        WaitForOutcome();
        bool twoRunning = !_primary.Dead && _guest.State != DomainState.Exited && _takeover is { State: not DomainState.Exited };
        Stop();
        timed.ForEach(t => t.Join(TimeSpan.FromSeconds(5)));
        backupThread.Join(TimeSpan.FromSeconds(5));
        ticker.Join(TimeSpan.FromSeconds(5));

        var boundaries = new List<long>();
        lock (_boundaries) boundaries.AddRange(_boundaries);
        if (_guest.ExitedAt is { } exited) boundaries.Add(exited + 1);
        boundaries.Sort();
        var chunks = _world.Chunks;
        var violations = Invariants.Check(chunks, boundaries);
        lock (_violations) violations.AddRange(_violations);
        return new SimulationResult
        {
            Scenario = _s, Mutation = _mutation, Violations = violations, World = chunks, Trace = _trace.Events,
            FaultFired = _fired.All(f => f == 1), TookOver = _takeover != null, BackupOutcome = _outcome,
            Checkpoints = _watcher.Checkpoints, DurationMs = Now, TwoCopiesRunning = twoRunning, MachineStallMs = _machineStallMs,
        };
    }

    // ---------------------------------------------------------------- the hosts around the engine

    /// <summary>What VmmHost does when protection fails or ends: dispose the primary (held output released, END if protected), close the channel.</summary>
    private void EndProtectionLikeTheHost()
    {
        if (Interlocked.Exchange(ref _primaryDisposed, 1) == 1) return;
        _trace.Add("primary", "the host ends protection (RemusPrimary.Dispose)");
        if (!RunBounded("RemusPrimary.Dispose", () => { _remus.Dispose(); _trace.Add("primary", "Dispose returned"); }, TimeSpan.FromMilliseconds(Math.Max(0, _quietAfterMs - Now)) + 2 * _s.Timeout + TimeSpan.FromSeconds(3)))
            return;
        _epochs.Writer.Dispose();
        _acks.Reader.Dispose();
        _trace.Add("primary", $"the host closed the channel ({_epochs.BytesWritten} bytes written)");
    }

    private void BackupDriver()
    {
        try
        {
            var outcome = _watcher.Watch(config =>
            {
                var d = SimDomain.CreateIncoming(GuestConfig.FromJson(config.Span), _backup.View);
                _backup.Domain = d;
                return d;
            });
            _outcome = outcome.ToString();
            _trace.Add("backup", $"watch ended: {outcome} (last checkpoint {_watcher.LastCheckpoint?.ToString() ?? "none"}; {_watcher.LossReason ?? "no loss"})");
            if (outcome == BackupOutcome.Failover && !_backup.Dead) TakeOver();
            else if (outcome != BackupOutcome.Failover) _watcher.Domain?.Dispose(); // Rejected, or an outcome this harness does not know: no takeover
        }
        catch (SimulatedCrashException)
        {
            _outcome = "crashed";
        }
        catch (Exception e)
        {
            _outcome = $"threw {e.GetType().Name}";
            _trace.Add("backup", $"watch threw {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            _backupDone = true;
        }
    }

    /// <summary>The failover as IncomingVmm does it: re-emit the last epoch's output, then run the guest (a fresh run: a new nonce).</summary>
    private void TakeOver()
    {
        var d = (SimDomain)_watcher.Domain!;
        Interlocked.Exchange(ref _releasedAtTakeover, _world.MaxCounter(Source.Primary));
        if (d.Incoherence() is { } why) AddViolation($"the backup took over from checkpoint {_watcher.LastCheckpoint} whose memory and state do not agree: {why}");
        // Both hosts live and the channel carries every byte, only damaged: a corrupt stream (or ack) must be refused,
        // never taken for a dead primary (a corrupt record length once starved the backup into that).
        if (_faults.All(f => f.Kind is ScenarioKind.EpochCorrupted or ScenarioKind.EpochRecordHeaderCorrupted or ScenarioKind.AckCorrupted))
            AddViolation($"the backup took over although both hosts live and the channel was only corrupted ({_watcher.LossReason ?? "no loss reason"})");
        _watcher.ReplayLastOutput(_backup.View);
        d.StartTakeover(_nonce2);
        _takeover = d;
        _trace.Add("backup", $"took over at n={d.Counter} (run={_nonce2:x8})");
    }
}
