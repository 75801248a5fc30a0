using System.Diagnostics;
using Remus.Checkpoint.Stream;
using Remus.Checkpoint.Witness;
using Remus.Sandbox;
using Remus.Sandbox.Volumes;

namespace Remus.Checkpoint.Remus;

/// <summary>How a backup's watch ended.</summary>
public enum BackupOutcome
{
    /// <summary>
    /// The primary was lost with a complete checkpoint here: the domain must take over (failover). TAKEOVER has been
    /// written on the back channel (best effort) before this returns.
    /// </summary>
    Failover,
    /// <summary>The primary ended protection gracefully (END): its program exited or protection was stopped.</summary>
    Ended,
    /// <summary>
    /// The primary sent a corrupt checkpoint, or one that could not be applied: it was refused and protection ends
    /// without a takeover — the primary is evidently alive, and starting the domain here too would run it twice.
    /// If the refused checkpoint had already touched memory, the copy here is inconsistent and is never run.
    /// The primary sees the connection close and goes on unprotected.
    /// </summary>
    Rejected,
    /// <summary>
    /// The primary gave up on this backup (RELEASE: "you are released, do not take over"): the copy is discarded and
    /// RELEASED answered; the primary goes on unprotected.
    /// </summary>
    Released,
    /// <summary>
    /// The primary was lost after this backup acked its EXIT epoch (the program had exited) and before END: there is
    /// nothing to run. Call <see cref="RemusBackup.ReplayLastOutput"/> (the program's last output, which the primary
    /// may not have released) and end with <see cref="RemusBackup.ExitStatus"/>.
    /// </summary>
    Exited,
    /// <summary>
    /// With a witness: the primary was lost, but the witness key could not be taken within
    /// <see cref="RemusOptions.WitnessBound"/> — the primary (or another copy) still holds it, or the witness could not
    /// be reached. No takeover: the copy is discarded (<see cref="RemusBackup.LossReason"/> says why and names the holder).
    /// </summary>
    Declined,
}

/// <summary>
/// The backup of a protected domain (`remus migrate-receive -r`): introduces itself (HELLO with its timeout), builds
/// the domain from the initial synchronisation, then applies each checkpoint only when it arrived whole, its
/// checksum verified and its state decoded, and acks it.
/// <para>
/// The primary is declared lost on a broken stream, EOF, or when the reader has waited T for bytes
/// (<see cref="SilenceWatch"/>: time spent applying, or stopped, does not count). With a complete checkpoint,
/// <see cref="Watch"/> writes TAKEOVER and returns <see cref="BackupOutcome.Failover"/>; <see cref="Domain"/> is then
/// ready to take over (paused): call <see cref="ReplayLastOutput"/>, rename it, unpause it. Without one it throws
/// (nothing is left behind). A corrupt epoch is refused and the last good checkpoint kept. RELEASE ends the watch
/// without a takeover (<see cref="BackupOutcome.Released"/>), END too (<see cref="BackupOutcome.Ended"/>).
/// </para>
/// <para>
/// <b>Volumes</b> (issue 10): an epoch's VOLUME_OPS are judged by the domain's replica before anything is touched and
/// applied after its pages and before its state is loaded (which reopens the volume files from them), then acked;
/// initial-sync epochs apply theirs at their end. A failure to apply them refuses the epoch
/// (<see cref="BackupOutcome.Rejected"/>: no takeover). After a failover the caller makes the copy the domain's
/// volumes with <see cref="CommitVolumes"/>.
/// </para>
/// <para>
/// <b>Witness</b> (issue 12, docs/witness.md): with <see cref="RemusOptions.Witness"/>, a backup that declared its
/// primary lost takes over only once it has <b>acquired</b> the domain's key (tried every TTL/4, which succeeds only
/// once the primary's lease has expired or was revoked); if it cannot within <see cref="RemusOptions.WitnessBound"/>,
/// it ends with <see cref="BackupOutcome.Declined"/> and discards its copy. The lease it acquired is
/// <see cref="Lease"/>: the caller keeps it (the copy that took over is the active one) and disposes it when done.
/// </para>
/// <para>
/// A failure to write an ack does not make the backup take over: only the forward direction (the primary's
/// bytes) decides. A primary that gets no acks gives up and says RELEASE; one that died closes the stream.
/// </para>
/// </summary>
public sealed class RemusBackup(System.IO.Stream forward, System.IO.Stream back, RemusOptions options, Action<string>? log = null)
{
    private readonly AckWriter _acks = new(back);
    private byte[] _lastOutput = [];
    private bool _backBroken;
    private int _decision; // 0 undecided, 1 take over (the primary was silent), 2 released (RELEASE read)
    private long _lastAckTicks; // Stopwatch time the last checkpoint's ACK was written (0: none)
    private volatile bool _silent; // the primary was declared lost by silence (T of blocked reading), not by EOF or an error

    public ICheckpointable? Domain { get; private set; }
    public ulong? LastCheckpoint { get; private set; }
    public long Checkpoints { get; private set; }

    /// <summary>The reason the primary was declared lost (or why protection ended without a takeover).</summary>
    public string? LossReason { get; private set; }

    /// <summary>
    /// The domain's name as the witness key carries it: <see cref="RemusOptions.DomainName"/>, or when that is empty the
    /// "name" of the domain configuration the stream's header carries.
    /// </summary>
    public string WitnessDomain { get; private set; } = options.DomainName;

    /// <summary>The "name" of a domain configuration (JSON); "" if it has none.</summary>
    internal static string NameInConfig(ReadOnlyMemory<byte> config)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(config);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object) return "";
            // The Toolstack writes "Name"; other writers may spell it "name".
            foreach (var p in doc.RootElement.EnumerateObject())
                if (string.Equals(p.Name, "name", StringComparison.OrdinalIgnoreCase) && p.Value.ValueKind == System.Text.Json.JsonValueKind.String)
                    return p.Value.GetString() ?? "";
            return "";
        }
        catch (System.Text.Json.JsonException)
        {
            return "";
        }
    }

    /// <summary>The witness key this backup took before it failed over (null: no witness, or no failover).</summary>
    public IWitnessLease? Lease { get; private set; }

    /// <summary>The program's exit status, once an EXIT epoch was acked.</summary>
    public int? ExitStatus { get; private set; }

    public BackupOutcome Watch(Func<ReadOnlyMemory<byte>, ICheckpointable> build)
    {
        try
        {
            _acks.WriteHello(options.Timeout);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            throw new ProtectionException($"the primary is gone before the handshake ({e.Message}); nothing to take over");
        }
        using var watched = new SilenceWatch(forward, options.Timeout, () =>
        {
            if (Interlocked.CompareExchange(ref _decision, 1, 0) != 0) return false;
            _silent = true;
            LossReason ??= $"no checkpoint or heartbeat from the primary for {options.Timeout.TotalMilliseconds:F0} ms";
            return true;
        });
        var reader = new CheckpointReader(watched, options.Reader);
        ulong lastEpoch = 0;
        bool touched = false; // memory of a checkpoint written, its state not yet loaded
        try
        {
            var header = reader.ReadHeader();
            WitnessDomain = options.DomainName is { Length: > 0 } named ? named : NameInConfig(header.DomainConfig);
            Domain = build(header.DomainConfig);
            var pages = new DomainPages(Domain);
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch)
                {
                    lastEpoch = epoch.Number;
                    Step(RemusStep.BackupReceived, epoch.Number);
                    if (epoch.Exit is { } exit)
                    {
                        // The program exited on the primary: nothing to run; keep its last output and status, and
                        // apply its last volume operations (judged first).
                        OutputCommitConsole.Validate(exit.Output);
                        epoch.ValidateVolumes(Domain.Volumes);
                        ApplyVolumes(epoch);
                        _lastOutput = exit.Output;
                        ExitStatus = exit.Status;
                        Step(RemusStep.BackupApplied, epoch.Number);
                        Ack(epoch);
                        Step(RemusStep.BackupAcked, epoch.Number);
                        continue;
                    }
                    if (epoch.KernelState == null || epoch.VcpuStates.Count == 0)
                    {
                        // An initial-sync round: applied, not yet a checkpoint. Volumes judged before anything is touched.
                        epoch.ValidateVolumes(Domain.Volumes);
                        epoch.ApplyTo(pages);
                        ApplyVolumes(epoch);
                        Domain.PrepareLoad(); // so that the first checkpoint's LoadState costs what changed since
                        Ack(epoch);
                        continue;
                    }
                    // Everything that can be judged is judged before memory is touched: the state's framing, the
                    // output's framing, the vCPU ids. A failure here leaves the last checkpoint intact.
                    var vcpus = epoch.VcpuStatesInOrder();
                    var (kernel, output) = RemusState.SplitKernel(epoch.KernelState);
                    OutputCommitConsole.Validate(output);
                    epoch.ValidateVolumes(Domain.Volumes);
                    // Memory, volumes and state as one unit: once the pages are written, a failure to apply the
                    // volumes or load the state leaves a mix of this epoch and the previous one — a copy that must
                    // never run. The volumes come before the state, which reopens the volume files from them.
                    touched = true;
                    epoch.ApplyTo(pages);
                    ApplyVolumes(epoch);
                    Domain.LoadState(vcpus, kernel.Span);
                    touched = false;
                    _lastOutput = output;
                    LastCheckpoint = epoch.Number;
                    Checkpoints++;
                    Step(RemusStep.BackupApplied, epoch.Number);
                    Ack(epoch);
                    Step(RemusStep.BackupAcked, epoch.Number);
                }
            }
            if (reader.IsReleased)
            {
                if (Interlocked.CompareExchange(ref _decision, 2, 0) == 0) return Release(reader.ReleaseReason);
                return FailOver(); // the silence verdict came first: TAKEOVER tells the primary it is fenced
            }
            Discard();
            return BackupOutcome.Ended;
        }
        catch (RemusCrashException)
        {
            Discard();
            throw;
        }
        catch (VolumeApplyException e)
        {
            return Reject($"the volume operations of epoch {lastEpoch} could not be applied ({e.InnerException?.Message}); " +
                          "the copy here is inconsistent and will never run");
        }
        catch (Exception e) when (touched && Domain != null)
        {
            return Reject($"checkpoint {lastEpoch} could not be applied after its memory was written ({Describe(e)}); " +
                          "the copy here is inconsistent and will never run");
        }
        catch (InvalidDataException e) when (Domain != null && LossReason == null)
        {
            return Reject($"refused a checkpoint from the primary whose state does not decode: {e.Message}");
        }
        catch (CheckpointStreamException e) when (e.Error is not CheckpointStreamError.Truncated && LossReason == null && Domain != null)
        {
            return Reject($"refused a corrupt checkpoint from the primary: {e.Message}");
        }
        catch (Exception e) when (e is IOException or CheckpointStreamException or ObjectDisposedException)
        {
            LossReason ??= $"the connection to the primary broke ({Describe(e)})";
            Interlocked.CompareExchange(ref _decision, 1, 0);
            log?.Invoke($"primary lost: {LossReason}");
            if (ExitStatus != null) return TakeOver(BackupOutcome.Exited);
            if (LastCheckpoint == null)
            {
                Discard();
                throw new ProtectionException($"the primary was lost before the first complete checkpoint ({LossReason}); nothing to take over");
            }
            return FailOver();
        }
        catch
        {
            Discard();
            throw;
        }
    }

    /// <summary>
    /// Applies the epoch's volume batches (validated already). Any failure (disk full, a path missing) becomes a
    /// <see cref="VolumeApplyException"/>: the epoch is refused and protection ends without a takeover — never a
    /// reason to take over, whatever the exception's type (an IOException here is this host's disk, not the link).
    /// </summary>
    private void ApplyVolumes(Epoch epoch)
    {
        if (epoch.VolumeBatchCount == 0) return;
        try
        {
            epoch.ApplyVolumes(Domain!.Volumes);
        }
        catch (Exception e)
        {
            throw new VolumeApplyException(e);
        }
    }

    /// <summary>
    /// After <see cref="BackupOutcome.Failover"/> (or <see cref="BackupOutcome.Exited"/>): makes the copy of the
    /// volumes built here the domain's volumes (<see cref="IVolumeReplica.Commit"/>: staging moved into place at each
    /// host path, waiting up to <paramref name="patience"/> for a VMM on this host to let go). The toolstack calls it
    /// after its takeover and before it unpauses the domain. Nothing to do for a domain without volumes.
    /// </summary>
    public void CommitVolumes(TimeSpan patience, Action<string>? say = null) => Domain?.Volumes?.Commit(patience, say);

    /// <summary>A volume batch of a verified epoch could not be applied here.</summary>
    private sealed class VolumeApplyException(Exception inner) : Exception(inner.Message, inner);

    /// <summary>Acks an epoch. A broken back channel is noted, not fatal: the forward direction decides.</summary>
    private void Ack(Epoch epoch)
    {
        if (_backBroken) return;
        try
        {
            _acks.WriteAck(epoch);
            _lastAckTicks = Stopwatch.GetTimestamp();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            _backBroken = true;
            log?.Invoke($"cannot acknowledge epoch {epoch.Number} ({e.Message}); waiting for the primary's verdict");
        }
    }

    private BackupOutcome Release(string? reason)
    {
        Step(RemusStep.BackupReleased, LastCheckpoint ?? 0);
        LossReason = $"the primary released its backup: {(string.IsNullOrEmpty(reason) ? "no reason given" : reason)}";
        log?.Invoke($"{LossReason}; discarding checkpoint {LastCheckpoint?.ToString() ?? "(none)"}");
        Discard();
        try { if (!_backBroken) _acks.WriteReleased(); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException) { /* it goes on anyway */ }
        return BackupOutcome.Released;
    }

    /// <summary>
    /// The primary is lost with a complete checkpoint here. Without a witness: take over. With one: only once the
    /// domain's key is ours (<see cref="AwaitWitnessKey"/>); else end without a takeover.
    /// </summary>
    private BackupOutcome FailOver()
    {
        if (options.Witness is not { } witness) return TakeOver();
        var lease = AwaitWitnessKey(witness, out int tries);
        if (lease == null) return Decline(witness, tries);
        Lease = lease;
        log?.Invoke($"took the witness key of domain '{WitnessDomain}' after {tries} attempt(s); taking over");
        return TakeOver();
    }

    /// <summary>
    /// Tries to take the domain's witness key every TTL/4 until it succeeds (the primary's lease expired or was
    /// revoked) or <see cref="RemusOptions.WitnessBound"/> has passed (null).
    /// </summary>
    private IWitnessLease? AwaitWitnessKey(IWitness witness, out int tries)
    {
        var me = options.Holder ?? new WitnessHolder(Environment.MachineName, Environment.ProcessId, "backup");
        var ttl = options.WitnessTtl;
        var period = TimeSpan.FromTicks(Math.Max(ttl.Ticks / 4, TimeSpan.TicksPerMillisecond));
        long deadline = Stopwatch.GetTimestamp() + (long)(options.WitnessBound.TotalSeconds * Stopwatch.Frequency);
        tries = 0;
        while (true)
        {
            Step(RemusStep.BackupWitnessTry, LastCheckpoint ?? 0);
            tries++;
            IWitnessLease? lease;
            try
            {
                lease = witness.TryAcquire(WitnessDomain, me, ttl, CancellationToken.None);
            }
            catch (WitnessException e)
            {
                log?.Invoke($"the witness: {e.Message}");
                lease = null;
            }
            if (lease != null) return lease;
            long left = deadline - Stopwatch.GetTimestamp();
            if (left <= 0) return null;
            Thread.Sleep(TimeSpan.FromTicks(Math.Min(period.Ticks, (long)((double)left / Stopwatch.Frequency * TimeSpan.TicksPerSecond) + 1)));
        }
    }

    /// <summary>The witness key stayed with another copy: no takeover; the copy is discarded and the primary told END.</summary>
    private BackupOutcome Decline(IWitness witness, int tries)
    {
        WitnessHolder? holder = null;
        try { holder = witness.CurrentHolder(WitnessDomain, CancellationToken.None); }
        catch (WitnessException) { }
        string who = holder == null ? "" : $" ({holder.Host}, pid {holder.VmmPid})";
        string lost = LossReason ?? "the primary was lost";
        LossReason = $"the primary still holds the witness key for domain {WitnessDomain}{who}: not taking over " +
                     $"({lost}; {tries} attempts in {options.WitnessBound.TotalMilliseconds:F0} ms)";
        log?.Invoke($"{LossReason}; discarding checkpoint {LastCheckpoint?.ToString() ?? "(none)"}");
        Step(RemusStep.BackupDeclined, LastCheckpoint ?? 0);
        Discard();
        try { if (!_backBroken) _acks.WriteEnd(); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException) { }
        return BackupOutcome.Declined;
    }

    /// <summary>Tells the primary (best effort) that this copy takes over, before anything is re-emitted or run.</summary>
    private BackupOutcome TakeOver(BackupOutcome outcome = BackupOutcome.Failover)
    {
        Step(RemusStep.BackupTakingOver, LastCheckpoint ?? 0);
        bool backWasBroken = _backBroken, takeoverFailed = false;
        try { _acks.WriteTakeover(); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException) { takeoverFailed = true; }
        catch (InvalidOperationException) { }
        Step(RemusStep.BackupTakeoverSent, LastCheckpoint ?? 0);
        if (!_silent && !PrimaryEndClosed(backWasBroken, takeoverFailed)) AwaitPrimaryLeaseEnd();
        return outcome;
    }

    /// <summary>
    /// After EOF or a broken stream: whether the primary's end of the connection is closed, which on a direct TCP
    /// connection means its process is gone (the kernel closes a dead process's sockets; a live primary never closes
    /// its end before END or RELEASE): a write then meets the reset and fails. Probed for up to min(T/10, 20 ms), one
    /// HEARTBEAT a millisecond after TAKEOVER. A back channel broken before the primary was lost proves nothing.
    /// Over ssh, or a relay, a failed write means only that the relay is gone: a connection that breaks in both
    /// directions with both hosts alive is the witness's case (docs/stream-format.md §7.1).
    /// </summary>
    private bool PrimaryEndClosed(bool backWasBroken, bool takeoverFailed)
    {
        if (backWasBroken || _lastAckTicks == 0) return false;
        if (takeoverFailed) return true;
        long until = Stopwatch.GetTimestamp() + (long)(Math.Min(options.Timeout.TotalSeconds / 10, 0.020) * Stopwatch.Frequency);
        while (true)
        {
            try { _acks.Probe(); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException) { return true; }
            if (Stopwatch.GetTimestamp() >= until) return false;
            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// Before the copy re-emits anything or runs: waits until T has passed since the last ACK was written. The primary
    /// releases an epoch's output only if its ACK came within T − margin of the CHECKPOINT_END it wrote before that ACK
    /// (§7.1 of docs/stream-format.md), so from then on it can release nothing more. A silent primary needed T of
    /// blocked reading after that ACK to be declared lost and does not wait here; neither does a primary whose end of
    /// the connection is closed (<see cref="PrimaryEndClosed"/>: a crash). What waits is a takeover on EOF or a broken
    /// stream while the primary's end still takes writes: the forward direction closed with the primary alive, and the
    /// primary may read the ACK of the checkpoint this copy resumes from a moment after the close — re-emitting its
    /// output and running first would put the primary's release of the same output after this copy's new output
    /// (found by the simulation harness, seed 2005 of EpochStreamClosed, in CI).
    /// </summary>
    private void AwaitPrimaryLeaseEnd()
    {
        if (_lastAckTicks == 0) return;
        long until = _lastAckTicks + (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
        long left = until - Stopwatch.GetTimestamp();
        if (left <= 0) return;
        var wait = TimeSpan.FromSeconds((double)left / Stopwatch.Frequency);
        log?.Invoke($"waiting {wait.TotalMilliseconds:F0} ms until the primary can release nothing more (T after the last ack)");
        Thread.Sleep(wait);
    }

    private BackupOutcome Reject(string reason)
    {
        LossReason = reason;
        log?.Invoke($"{reason}; keeping checkpoint {LastCheckpoint?.ToString() ?? "(none)"} unused and ending protection");
        try { if (!_backBroken) _acks.WriteEnd(); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or InvalidOperationException) { }
        back.Dispose();
        return BackupOutcome.Rejected;
    }

    private void Step(RemusStep step, ulong epoch) => RemusCrashException.Report(options, step, epoch);

    private static string Describe(Exception e) => e switch
    {
        CheckpointStreamException cs => $"the primary's stream failed: {cs.Message}",
        _ => e.Message,
    };

    /// <summary>
    /// Re-emits the output of the last checkpointed epoch (the primary may not have released it): its console output
    /// to <paramref name="console"/> and its network frames to <paramref name="wire"/> (the taken-over domain's tap;
    /// null: dropped), in their order; after <see cref="BackupOutcome.Exited"/>, the program's last output.
    /// </summary>
    public void ReplayLastOutput(IConsole console, global::Remus.Sandbox.Net.INetLink? wire = null) =>
        OutputCommitConsole.Replay(console, wire, _lastOutput);

    private void Discard()
    {
        Domain?.Dispose();
        Domain = null;
    }
}
