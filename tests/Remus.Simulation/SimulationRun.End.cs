using System.Diagnostics;
using Remus.Sandbox;

namespace Remus.Simulation;

/// <summary>The end of a run: waiting for the outcome (bounded), the host's orderly stop, the checks that need the live run.</summary>
public sealed partial class SimulationRun
{
    /// <summary>
    /// Measures how late a thread that sleeps 5 ms wakes up, and how long a work item waits for the thread pool (where
    /// the engine's timers run, the backup's watchdog among them): a loaded machine, a GC pause or a starved pool that
    /// holds things up for longer than the timeout is a fault nobody injected, and today's protocol does not survive
    /// it (finding 1).
    /// </summary>
    private void Tick()
    {
        while (!_stopping.IsSet)
        {
            double t0 = Now, sent = Volatile.Read(ref _poolProbeSentMs);
            if (sent >= 0) Stall(t0 - sent); // the last probe still waits for a pool thread
            else
            {
                Volatile.Write(ref _poolProbeSentMs, t0);
                ThreadPool.UnsafeQueueUserWorkItem(_ =>
                {
                    Stall(Now - Volatile.Read(ref _poolProbeSentMs));
                    Volatile.Write(ref _poolProbeSentMs, -1);
                }, null);
            }
            Thread.Sleep(5);
            Stall(Now - t0 - 5);
        }
    }

    private void Stall(double ms)
    {
        lock (_stallLock) _machineStallMs = Math.Max(_machineStallMs, ms);
    }

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

    /// <summary>How long after protection started the faults (or the guest's exit) should have happened.</summary>
    private double FaultWindowMs()
    {
        double window = _s.Guest.ExitAt >= 0 ? _s.Guest.ExitAt * 2.0 / _s.Guest.StepsPerTick + 50 : 0;
        foreach (var f in _faults)
            window = Math.Max(window, IsTimed(f)
                ? (f.At + f.Window + f.Duration).TotalMilliseconds
                : (f.Epoch + 3) * _s.Interval.TotalMilliseconds + f.Duration.TotalMilliseconds);
        return window;
    }

    /// <summary>How long to wait after that for an outcome: longer when a fault may need the timeout to be noticed.</summary>
    private double SettleMs()
    {
        double settle = Math.Min(20 * _s.Interval.TotalMilliseconds, 200) + 50;
        bool quiet = _faults.All(f => f.Kind is ScenarioKind.Clean or ScenarioKind.GuestExits or ScenarioKind.PrimaryKilledBeforeEndAtStop
            or ScenarioKind.PrimaryStalledBriefly or ScenarioKind.BackupStalledBriefly or ScenarioKind.EpochsDelayedBriefly
            or ScenarioKind.AcksDelayedBriefly);
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
        if (Interlocked.Exchange(ref _primaryDisposed, 1) == 0) RunBounded("RemusPrimary.Dispose", _remus.Dispose, TimeSpan.FromSeconds(5));
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
