using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;

namespace Remus.Simulation;

/// <summary>
/// The scenario's faults (one, or two for a combination), each injected at a step (the engine's hook), at a byte
/// (a pipe's tap) or at a moment (a thread of its own), and each fired at most once.
/// </summary>
public sealed partial class SimulationRun
{
    private bool MarkFired(int fault) => Interlocked.Exchange(ref _fired[fault], 1) == 0;

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
        bool isPrimary = side == _primary;
        if ((isPrimary ? _lastPrimaryStep : _lastBackupStep) is var (last, endMs))
        {
            if (EngineWorksAfter(last)) Stall(Now - endMs);
            else if (last == RemusStep.Released) Stall(Now - endMs - _s.Interval.TotalMilliseconds); // overslept the interval
        }
        if (isPrimary && step == RemusStep.Acked) CloseAtAck(epoch); // before a stall at the same step
        for (int i = 0; i < _faults.Count; i++) StepFault(i, _faults[i], side, step, epoch);
        if (isPrimary) _lastPrimaryStep = (step, Now);
        else _lastBackupStep = (step, Now);
    }

    /// <summary>
    /// Steps after which the side works on its own until its next step (no wait for the peer or the interval): a long
    /// gap there is the machine holding the engine up (fresh memory costs ~14 us a page on a nested host; a loaded
    /// machine leaves a thread unscheduled for hundreds of ms while others run), a fault nobody injected.
    /// </summary>
    private static bool EngineWorksAfter(RemusStep step) => step is RemusStep.BeforeSuspend or RemusStep.Staged or RemusStep.Resumed
        or RemusStep.PagesSent or RemusStep.Acked or RemusStep.BackupReceived or RemusStep.BackupApplied;

    private void StepFault(int index, Scenario f, Node side, RemusStep step, ulong epoch)
    {
        if (f.StepFaultOnPrimary is not { } onPrimary || onPrimary != (side == _primary) || step != f.Step) return;
        long target;
        if (!f.EpochIsRelative) target = f.Epoch;
        else if (FirstCheckpoint is { } first) target = first + f.Epoch;
        else return;
        if ((long)epoch != target || !MarkFired(index)) return;

        if (f.IsStall)
        {
            _quietAfterMs = Math.Max(_quietAfterMs, Now + f.Duration.TotalMilliseconds);
            _trace.Add(side.Name, $"FAULT: stops (SIGSTOP) at {step} of epoch {epoch} for {f.Duration.TotalMilliseconds:F0} ms");
            if (side == _primary) _guest.Freeze(true);
            Thread.Sleep(f.Duration);
            if (side == _primary) _guest.Freeze(false);
            _trace.Add(side.Name, "continues (SIGCONT)");
            if (side.Dead) throw new SimulatedCrashException($"{side.Name} is down");
            return;
        }
        side.Crash(f.Crash, $"at {step} of epoch {epoch}");
        throw new SimulatedCrashException($"{side.Name} crashed at {step} of epoch {epoch}");
    }

    /// <summary>A closed direction pinned to the primary's reading the ack of a checkpoint (<see cref="Scenario.ClosesAtPrimaryAck"/>).</summary>
    private void CloseAtAck(ulong epoch)
    {
        for (int i = 0; i < _faults.Count; i++)
        {
            var f = _faults[i];
            if (!f.ClosesAtPrimaryAck || FirstCheckpoint is not { } first || (long)epoch != first + f.Epoch || !MarkFired(i)) continue;
            var pipe = f.Kind == ScenarioKind.EpochStreamClosed ? _epochs : _acks;
            _trace.Add("fault", $"FAULT: {f.Kind} as the primary read the ack of epoch {epoch}");
            pipe.Close();
        }
    }

    private void ArmStreamFaults()
    {
        var epochs = new FaultTap(new StreamSniffer(), (t, at) => _trace.Add("channel", $"FAULT: {t.Action} at byte {at} ({t.Name})"),
            () => _primary.Crash(CrashKind.Kill, "while sending"));
        var acks = new FaultTap(new StreamSniffer(withHeader: false), (t, at) => _trace.Add("channel", $"FAULT: {t.Action} at ack byte {at} ({t.Name})"),
            () => _backup.Crash(CrashKind.Kill, "while acking"));
        for (int i = 0; i < _faults.Count; i++) ArmStreamFault(i, _faults[i], epochs, acks);
        _epochs.Tap = epochs;
        _acks.Tap = acks;
    }

    private void ArmStreamFault(int index, Scenario f, FaultTap epochs, FaultTap acks)
    {
        long? EpochByte(StreamSniffer.Event e) =>
            e.EpochStart && FirstCheckpoint is { } first && (long)e.Epoch == first + f.Epoch ? e.Position + f.Offset : null;
        // The byte Offset bytes into the epoch, moved into the body of the record there (past its header), or onto a
        // byte of the header of the first record from there on.
        long? epochStart = null;
        Func<StreamSniffer.Event, long?> InRecord(bool body) => e =>
        {
            if (FirstCheckpoint is not { } first || (long)e.Epoch < first + f.Epoch) return null;
            if (epochStart == null && e.EpochStart) epochStart = e.Position;
            if (epochStart is not { } start) return null;
            long at = start + f.Offset, bodyStart = e.Position + e.HeaderSize, end = bodyStart + e.Length;
            if (body) return e.Length > 0 && end > at ? Math.Max(at, bodyStart) : null;
            return e.Position >= at - (e.HeaderSize - 1) ? e.Position + f.Offset % e.HeaderSize : null;
        };
        // A trigger's locator runs once per record until it answers: the answer marks the fault as fired.
        Func<StreamSniffer.Event, long?> Once(Func<StreamSniffer.Event, long?> locate) => e => locate(e) is { } at && MarkFired(index) ? at : null;
        string where = $"epoch first+{f.Epoch} byte {f.Offset}";
        switch (f.Kind)
        {
            case ScenarioKind.PrimaryKilledMidSend:
                epochs.Add(new TapTrigger(where, Once(EpochByte), TapAction.Crash));
                break;
            case ScenarioKind.EpochCorrupted:
                epochs.Add(new TapTrigger(where + " (a body)", Once(InRecord(body: true)), TapAction.Corrupt, f.Mask));
                break;
            case ScenarioKind.EpochRecordHeaderCorrupted:
                epochs.Add(new TapTrigger(where + " (a header)", Once(InRecord(body: false)), TapAction.Corrupt, f.Mask));
                break;
            case ScenarioKind.EpochTruncated:
                epochs.Add(new TapTrigger(where, Once(EpochByte), TapAction.Truncate));
                break;
            case ScenarioKind.PrimaryKilledBeforeEndAtExit:
                epochs.Add(new TapTrigger("END after the guest exited",
                    Once(e => e.Type == RecordType.End && _guest.ExitedAt != null && !_stopping.IsSet ? e.Position : null), TapAction.Crash));
                break;
            case ScenarioKind.PrimaryKilledBeforeEndAtStop:
                epochs.Add(new TapTrigger("END as the host stops protection",
                    Once(e => e.Type == RecordType.End && _stopping.IsSet && _guest.ExitedAt == null ? e.Position : null), TapAction.Crash));
                break;
            case ScenarioKind.AckCorrupted:
                acks.Add(new TapTrigger($"ack of epoch first+{f.Epoch} byte {8 + f.Offset % 16}",
                    Once(e => e.Type == RecordType.Ack && FirstCheckpoint is { } first && e.Ordinal == first + f.Epoch ? e.Position + 8 + f.Offset % 16 : null),
                    TapAction.Corrupt, f.Mask));
                break;
            case ScenarioKind.PrimaryKilledAfterFinalRelease:
                _primary.View.AfterWrite = text =>
                {
                    if (Transcript.Lines(text).Any(l => Transcript.Parse(l)?.N == _s.Guest.ExitAt) && MarkFired(index))
                        _primary.Crash(CrashKind.Kill, "right after the guest's last line reached the world");
                };
                break;
            case ScenarioKind.IntervalLongerThanTimeout:
                MarkFired(index); // the fault is the configuration
                break;
        }
    }

    private static bool IsTimed(Scenario f) => IsTimedKind(f.Kind) && !f.ClosesAtPrimaryAck;

    private static bool IsTimedKind(ScenarioKind k) => k is ScenarioKind.PrimaryKilledAtRandomTime or ScenarioKind.BackupKilledAtRandomTime
        or ScenarioKind.EpochsCut or ScenarioKind.AcksCut or ScenarioKind.EpochStreamClosed or ScenarioKind.AckStreamClosed
        or ScenarioKind.ConnectionReset or ScenarioKind.EpochsDelayedBriefly or ScenarioKind.AcksDelayedBriefly
        or ScenarioKind.EpochsDelayedPastTimeout or ScenarioKind.AcksDelayedPastTimeout;

    private void TimedFault(int index, Scenario f)
    {
        if (_stopping.Wait(f.At) || !MarkFired(index)) return;
        _trace.Add("fault", $"FAULT: {f.Kind}");
        switch (f.Kind)
        {
            case ScenarioKind.PrimaryKilledAtRandomTime: _primary.Crash(f.Crash, "at a random moment"); break;
            case ScenarioKind.BackupKilledAtRandomTime: _backup.Crash(f.Crash, "at a random moment"); break;
            case ScenarioKind.EpochsCut: _epochs.Silence(); break;
            case ScenarioKind.AcksCut: _acks.Silence(); break;
            case ScenarioKind.EpochStreamClosed: _epochs.Close(); break;
            case ScenarioKind.AckStreamClosed: _acks.Close(); break;
            case ScenarioKind.ConnectionReset: _epochs.Reset(); _acks.Reset(); break;
            default:
                var pipe = f.Kind is ScenarioKind.EpochsDelayedBriefly or ScenarioKind.EpochsDelayedPastTimeout ? _epochs : _acks;
                _quietAfterMs = Math.Max(_quietAfterMs, Now + (f.Window + f.Duration).TotalMilliseconds);
                pipe.Delay(f.Duration);
                if (!_stopping.Wait(f.Window)) _trace.Add("fault", $"{pipe.Name}: delay off");
                pipe.Delay(TimeSpan.Zero);
                break;
        }
    }
}
