using System.Diagnostics;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;
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
public sealed class SimulationRun
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
    private int _fired;
    private double _quietAfterMs;
    private double _protectedAtMs;
    private volatile bool _protectFailed, _backupDone, _aborted;
    private volatile SimDomain? _takeover;
    private long _releasedAtTakeover = -1;
    private string _outcome = "none";
    private double _machineStallMs;

    public static SimulationResult Execute(Scenario scenario, Mutation mutation = Mutation.None) => new SimulationRun(scenario, mutation).Run();

    private SimulationRun(Scenario scenario, Mutation mutation)
    {
        _s = scenario;
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
        if (_s.Kind == ScenarioKind.IntervalLongerThanTimeout) _fired = 1; // the fault is the configuration
        Thread.Sleep(_s.HeadStart);
        // The receiver starts as the channel opens, just before the primary writes the header (its watchdog counts from here).
        var backupThread = new Thread(BackupDriver) { IsBackground = true, Name = "sim-backup" };
        backupThread.Start();
        try
        {
            _remus.Protect(_s.Guest.ToJson());
            _trace.Add("primary", "protected");
        }
        catch (ProtectionException e)
        {
            _protectFailed = true;
            _trace.Add("primary", $"protect failed: {e.Message}");
            if (!_primary.Dead) EndProtectionLikeTheHost();
        }
        _protectedAtMs = Now;
        var timed = new Thread(TimedFault) { IsBackground = true, Name = "sim-fault" };
        timed.Start();
        var ticker = new Thread(Tick) { IsBackground = true, Name = "sim-ticker" };
        ticker.Start();
        WaitForOutcome();
        bool twoRunning = !_primary.Dead && _guest.State != DomainState.Exited && _takeover is { State: not DomainState.Exited };
        Stop();
        timed.Join(TimeSpan.FromSeconds(5));
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
            FaultFired = Volatile.Read(ref _fired) == 1, TookOver = _takeover != null, BackupOutcome = _outcome,
            Checkpoints = _watcher.Checkpoints, DurationMs = Now, TwoCopiesRunning = twoRunning, MachineStallMs = _machineStallMs,
        };
    }

    // ---------------------------------------------------------------- the hosts around the engine

    /// <summary>What VmmHost does when protection fails or ends: dispose the primary (held output released, END if protected), close the channel.</summary>
    private void EndProtectionLikeTheHost()
    {
        if (!RunBounded("RemusPrimary.Dispose", _remus.Dispose, TimeSpan.FromMilliseconds(Math.Max(0, _quietAfterMs - Now)) + 2 * _s.Timeout + TimeSpan.FromSeconds(3)))
            return;
        _epochs.Writer.Dispose();
        _acks.Reader.Dispose();
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
        _watcher.ReplayLastOutput(_backup.View);
        d.StartTakeover(_nonce2);
        _takeover = d;
        _trace.Add("backup", $"took over at n={d.Counter} (run={_nonce2:x8})");
    }

    // ---------------------------------------------------------------- faults

    private void OnStep(Node side, RemusStep step, ulong epoch)
    {
        if (side.Dead) throw new SimulatedCrashException($"{side.Name} is down");
        if (side == _primary)
        {
            if (step == RemusStep.BeforeSuspend) Interlocked.CompareExchange(ref _firstCheckpoint, (long)epoch, -1);
            if (step == RemusStep.Staged)
            {
                lock (_boundaries) _boundaries.Add((long)_guest.Counter);
                if (_mutation == Mutation.ReleaseBeforeAck) _commit.Release(epoch);
            }
        }
        _trace.Add(side.Name, step == RemusStep.Staged ? $"{step} e={epoch} n={_guest.Counter}" : $"{step} e={epoch}");

        if (_s.StepFaultOnPrimary is not { } onPrimary || onPrimary != (side == _primary) || step != _s.Step) return;
        long target;
        if (!_s.EpochIsRelative) target = _s.Epoch;
        else if (FirstCheckpoint is { } first) target = first + _s.Epoch;
        else return;
        if ((long)epoch != target || Interlocked.Exchange(ref _fired, 1) == 1) return;

        if (_s.IsStall)
        {
            _quietAfterMs = Now + _s.Duration.TotalMilliseconds;
            _trace.Add(side.Name, $"FAULT: stops (SIGSTOP) at {step} of epoch {epoch} for {_s.Duration.TotalMilliseconds:F0} ms");
            if (side == _primary) _guest.Freeze(true);
            Thread.Sleep(_s.Duration);
            if (side == _primary) _guest.Freeze(false);
            _trace.Add(side.Name, "continues (SIGCONT)");
            if (side.Dead) throw new SimulatedCrashException($"{side.Name} is down");
            return;
        }
        side.Crash(_s.Crash, $"at {step} of epoch {epoch}");
        throw new SimulatedCrashException($"{side.Name} crashed at {step} of epoch {epoch}");
    }

    private void ArmStreamFaults()
    {
        void Fired(TapTrigger t, long at)
        {
            Interlocked.Exchange(ref _fired, 1);
            _trace.Add("channel", $"FAULT: {t.Action} at byte {at} ({t.Name})");
        }
        long? EpochByte(StreamSniffer.Event e) =>
            e.EpochStart && FirstCheckpoint is { } f && (long)e.Epoch == f + _s.Epoch ? e.Position + _s.Offset : null;

        var tap = new FaultTap(new StreamSniffer(), Fired, () => _primary.Crash(CrashKind.Kill, "while sending"));
        switch (_s.Kind)
        {
            case ScenarioKind.PrimaryKilledMidSend:
                tap.Add(new TapTrigger($"epoch first+{_s.Epoch} byte {_s.Offset}", EpochByte, TapAction.Crash));
                break;
            case ScenarioKind.EpochCorrupted:
                tap.Add(new TapTrigger($"epoch first+{_s.Epoch} byte {_s.Offset}", EpochByte, TapAction.Corrupt, _s.Mask));
                break;
            case ScenarioKind.EpochTruncated:
                tap.Add(new TapTrigger($"epoch first+{_s.Epoch} byte {_s.Offset}", EpochByte, TapAction.Truncate));
                break;
            case ScenarioKind.PrimaryKilledBeforeEndAtExit:
                tap.Add(new TapTrigger("END after the guest exited",
                    e => e.Type == RecordType.End && _guest.ExitedAt != null && !_stopping.IsSet ? e.Position : null, TapAction.Crash));
                break;
            case ScenarioKind.AckCorrupted:
                var acks = new FaultTap(new StreamSniffer(withHeader: false), Fired, () => _backup.Crash(CrashKind.Kill, "while acking"));
                acks.Add(new TapTrigger($"ack of epoch first+{_s.Epoch} byte {8 + _s.Offset % 16}",
                    e => e.Type == RecordType.Ack && FirstCheckpoint is { } f && e.Ordinal == f + _s.Epoch ? e.Position + 8 + _s.Offset % 16 : null,
                    TapAction.Corrupt, _s.Mask));
                _acks.Tap = acks;
                break;
            case ScenarioKind.PrimaryKilledAfterFinalRelease:
                _primary.View.AfterWrite = text =>
                {
                    if (Transcript.Lines(text).Any(l => Transcript.Parse(l)?.N == _s.Guest.ExitAt) && Interlocked.Exchange(ref _fired, 1) == 0)
                        _primary.Crash(CrashKind.Kill, "right after the guest's last line reached the world");
                };
                break;
        }
        _epochs.Tap = tap;
    }

    private void TimedFault()
    {
        var k = _s.Kind;
        if (k is not (ScenarioKind.PrimaryKilledAtRandomTime or ScenarioKind.BackupKilledAtRandomTime or ScenarioKind.EpochsCut
            or ScenarioKind.AcksCut or ScenarioKind.EpochStreamClosed or ScenarioKind.AckStreamClosed or ScenarioKind.ConnectionReset
            or ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly or ScenarioKind.EpochsDelayedPastTimeout
            or ScenarioKind.AcksDelayedPastTimeout))
            return;
        if (_stopping.Wait(_s.At)) return;
        Interlocked.Exchange(ref _fired, 1);
        _trace.Add("fault", $"FAULT: {k}");
        switch (k)
        {
            case ScenarioKind.PrimaryKilledAtRandomTime: _primary.Crash(_s.Crash, "at a random moment"); break;
            case ScenarioKind.BackupKilledAtRandomTime: _backup.Crash(_s.Crash, "at a random moment"); break;
            case ScenarioKind.EpochsCut: _epochs.Silence(); break;
            case ScenarioKind.AcksCut: _acks.Silence(); break;
            case ScenarioKind.EpochStreamClosed: _epochs.Close(); break;
            case ScenarioKind.AckStreamClosed: _acks.Close(); break;
            case ScenarioKind.ConnectionReset: _epochs.Reset(); _acks.Reset(); break;
            default:
                var pipe = k is ScenarioKind.EpochsDelayedBriefly or ScenarioKind.EpochsDelayedPastTimeout ? _epochs : _acks;
                _quietAfterMs = Now + (_s.Window + _s.Duration).TotalMilliseconds;
                pipe.Delay(_s.Duration);
                if (!_stopping.Wait(_s.Window)) _trace.Add("fault", $"{pipe.Name}: delay off");
                pipe.Delay(TimeSpan.Zero);
                break;
        }
    }

    /// <summary>
    /// Measures how late a thread that sleeps 5 ms wakes up: a loaded machine (or a GC pause) that stops the process
    /// for longer than the timeout is a fault nobody injected, and today's protocol does not survive it (finding 1).
    /// </summary>
    private void Tick()
    {
        while (!_stopping.IsSet)
        {
            double t0 = Now;
            Thread.Sleep(5);
            _machineStallMs = Math.Max(_machineStallMs, Now - t0 - 5);
        }
    }

    // ---------------------------------------------------------------- the end of a run

    private void WaitForOutcome()
    {
        double deadline = _protectedAtMs + FaultWindowMs() + SettleMs();
        while (Now < deadline && !_aborted)
        {
            if (Settled())
            {
                double linger = Math.Max(Now, _quietAfterMs) + Math.Max(5 * _s.Interval.TotalMilliseconds, 30);
                while (Now < linger && !_aborted) Thread.Sleep(5);
                return;
            }
            Thread.Sleep(5);
        }
    }

    /// <summary>Both sides reached an outcome: the primary died, failed or ended its loop; the backup decided, and a takeover got past everything released.</summary>
    private bool Settled()
    {
        bool primaryOver = _primary.Dead || _protectFailed || _remus.EndReason != null;
        if (!primaryOver || !_backupDone) return false;
        return _takeover is not { } t || t.State == DomainState.Exited || t.Progress > Interlocked.Read(ref _releasedAtTakeover);
    }

    /// <summary>How long after protection started the fault (or the guest's exit) should have happened.</summary>
    private double FaultWindowMs()
    {
        double interval = _s.Interval.TotalMilliseconds;
        if (_s.Guest.ExitAt >= 0) return _s.Guest.ExitAt * 2.0 / _s.Guest.StepsPerTick + 50;
        double steps = (_s.Epoch + 3) * interval;
        return _s.Kind switch
        {
            ScenarioKind.PrimaryKilledAtRandomTime or ScenarioKind.BackupKilledAtRandomTime or ScenarioKind.EpochsCut or ScenarioKind.AcksCut
                or ScenarioKind.EpochStreamClosed or ScenarioKind.AckStreamClosed or ScenarioKind.ConnectionReset
                or ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly or ScenarioKind.EpochsDelayedPastTimeout
                or ScenarioKind.AcksDelayedPastTimeout => (_s.At + _s.Window + _s.Duration).TotalMilliseconds,
            _ => steps + _s.Duration.TotalMilliseconds,
        };
    }

    private double SettleMs()
    {
        double settle = Math.Min(20 * _s.Interval.TotalMilliseconds, 200) + 50;
        bool quiet = _s.Kind is ScenarioKind.Clean or ScenarioKind.GuestExits or ScenarioKind.PrimaryStalledBriefly
            or ScenarioKind.BackupStalledBriefly or ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly;
        return quiet ? settle : settle + 2 * _s.Timeout.TotalMilliseconds;
    }

    private void Stop()
    {
        _stopping.Set();
        _trace.Add("harness", "stopping");
        if (!_primary.Dead && !_protectFailed) EndProtectionLikeTheHost();
        var bound = 3 * _s.Timeout + TimeSpan.FromSeconds(2);
        if (!WaitUntil(() => _backupDone, bound))
            AddViolation($"hang: the backup's watch had not ended {bound.TotalMilliseconds:F0} ms after the primary " +
                         (_primary.Dead ? "died" : "ended protection"));
        if (_takeover is { } t)
        {
            // Past everything the primary had released when the backup took over (what it releases later is a violation of its own).
            long released = Interlocked.Read(ref _releasedAtTakeover);
            if (!WaitUntil(() => t.State == DomainState.Exited || t.Progress > released, TimeSpan.FromSeconds(3)))
                AddViolation($"the backup took over but its guest did not get past n={released}, the last line the primary had released (it is at n={t.Progress})");
        }
        _takeover?.Kill();
        _guest.Kill();
        _epochs.Reset();
        _acks.Reset();
        RunBounded("RemusPrimary.Dispose", _remus.Dispose, TimeSpan.FromSeconds(5));
        _guest.Dispose();
        _takeover?.Dispose();
        _trace.Add("harness", "stopped");
    }

    private void Abort(string why)
    {
        if (_aborted) return;
        _aborted = true;
        AddViolation(why);
        _epochs.Reset();
        _acks.Reset();
        _guest.Kill();
        _backup.Domain?.Kill();
    }

    private bool RunBounded(string what, Action action, TimeSpan bound)
    {
        var t = new Thread(() =>
        {
            try { action(); }
            catch (Exception e) { _trace.Add("harness", $"{what} threw {e.GetType().Name}: {e.Message}"); }
        }) { IsBackground = true, Name = "sim-bounded" };
        t.Start();
        if (t.Join(bound)) return true;
        AddViolation($"hang: {what} did not return within {bound.TotalMilliseconds:F0} ms");
        return false;
    }

    private static bool WaitUntil(Func<bool> condition, TimeSpan bound)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > bound) return false;
            Thread.Sleep(2);
        }
        return true;
    }

    private void AddViolation(string v)
    {
        lock (_violations) _violations.Add(v);
        _trace.Add("harness", $"VIOLATION: {v}");
    }
}
