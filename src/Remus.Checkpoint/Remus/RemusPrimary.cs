using System.Buffers;
using System.Diagnostics;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Stream;
using Remus.Checkpoint.Witness;
using Remus.Sandbox;
using Remus.Sandbox.Volumes;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// The primary of a protected domain (the seed's `xl remus`): an initial synchronisation exactly like live
/// migration, then the epoch loop of the seed's three callbacks, kept by name:
/// <list type="bullet">
/// <item><see cref="Suspend"/> — pause the vCPU, harvest the dirty log, copy the dirty pages and the vCPU and
/// kernel state into a buffer, close the output epoch;</item>
/// <item><see cref="Postcopy"/> — resume the guest at once (it runs ahead speculatively), then drop the staged
/// pages that did not change and leave the pages that keep changing untracked (<see cref="HotPages"/>);</item>
/// <item><see cref="Checkpoint"/> — send the buffer and CHECKPOINT_END, wait for the backup's ack, release that
/// epoch's output, wait for the next interval.</item>
/// </list>
/// <para>
/// <b>One copy releases output at a time</b> (docs/stream-format.md §7.1). The backup's HELLO carries its timeout T.
/// The backup takes over only after its reader waited T for bytes; so the primary holds a lease on an epoch's output
/// that ends T − margin (<see cref="RemusOptions.Margin"/>) after it wrote that epoch's CHECKPOINT_END, and releases
/// the output only if the ack came within it: a late ack is no ground to release. Heartbeats (every T/4 of writing
/// nothing, on a thread of their own, serialized with the loop by the writer lock) keep a healthy backup from
/// timing out during a long interval or the initial synchronisation.
/// </para>
/// <para>
/// <b>Giving up</b> (write error, ack missing past the lease, a wrong ack, the back channel ending): nothing held is
/// released at once. The primary writes RELEASE ("you are released, do not take over") and waits up to T + margin:
/// RELEASED (the backup discarded its copy) → release and go on unprotected; TAKEOVER → <b>fenced</b>: drop the held
/// output, pause the domain, raise <see cref="Fenced"/> (the host stops the domain for good); neither (backup dead, or
/// the back direction cut: a live backup got RELEASE or heartbeats and cannot take over) → release and go on
/// unprotected. A full two-way partition with both sides alive is beyond this: issue 12's witness.
/// </para>
/// <para>
/// <b>Exit</b>: the program's last output travels in an EXIT epoch; it is released after the backup acked it, and
/// only then is END written. <b>Stop</b> (<see cref="Dispose"/>): END first, then release. <b>Pause</b>: a checkpoint
/// resumes only what its suspend paused, and <see cref="Pause"/>/<see cref="Unpause"/> take the same lock as the
/// checkpoint's pause window, so a user's pause stays a pause across epochs.
/// </para>
/// <para>
/// <b>Volumes</b> (issue 10): the initial synchronisation copies them alongside memory (rounds of
/// <see cref="IVolumeReplica.DrainCopy"/>, large rounds split over several epochs, heartbeats going meanwhile); the
/// last round runs in the first checkpoint's pause, which then starts the journal; every later pause drains the
/// journal into its epoch (VOLUME_OPS after the pages, before the state); the program's last operations go with its
/// EXIT. Tracking stops when protection ends, whichever way.
/// </para>
/// <para>
/// <b>Witness</b> (issue 12, docs/witness.md; <see cref="RemusOptions.Witness"/>): the primary takes the domain's key
/// before the initial synchronisation and keeps its lease alive. Every release of output — an acked epoch's, and
/// unprotected output — happens only while <c>Stopwatch.GetTimestamp() &lt; lease.ValidUntil</c> (the console's gate);
/// otherwise it stays held. Backup lost with the lease valid: on unprotected, as without a witness. Backup lost and
/// the lease not valid: the domain is paused (fail-stop) until the lease is valid again. The lease lost (the key
/// taken or gone): fenced, never resumed.
/// </para>
/// With <see cref="RemusOptions.Blackhole"/> the checkpoints go to a sink and output is released once the write
/// completed (the cost of checkpointing without a backup).
/// </summary>
public sealed class RemusPrimary : IDisposable
{
    private readonly ICheckpointable _domain;
    private readonly OutputCommitConsole _console;
    private readonly AckPump? _acks;
    private readonly RemusOptions _options;
    private readonly CheckpointWriter _writer;
    private readonly StagedPages _staged = new();
    private readonly DomainPages _pages;
    private readonly HotPages? _hot;
    private readonly RemusCounters _counters = new();
    private readonly ulong[] _dirty;     // the initial synchronisation's bitmap (PreCopy); folded into _dirtySet by the first pause
    private readonly DirtyPageSet _dirtySet; // the epochs' harvests: listed and cleared in O(pages written)
    private bool _preCopyLeft = true;    // _dirty still holds what the last pre-copy round harvested and did not send
    private ulong[] _pfns = new ulong[256]; // this epoch's dirty pages, reused (grown when an epoch has more)
    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _quiet = new(); // set: heartbeats stop
    private readonly object _writeLock = new();  // the writer is not thread-safe: epoch loop and heartbeat thread
    private readonly object _pauseLock = new();  // a checkpoint's pause window against Pause/Unpause
    private Thread? _loop, _heartbeat;
    private ulong _epoch;
    private readonly CapturedStates _states = new(); // this epoch's vCPU and kernel state, in buffers kept from epoch to epoch
    private byte[] _stateBody = new byte[16 << 10];  // this epoch's KERNEL_STATE body (kernel state + output), reused
    private int _stateLength;
    private long _pauseTicks;
    private int _stagedThisEpoch;
    private long _lastWrite = Stopwatch.GetTimestamp();
    private TimeSpan _timeout;
    private int _ended;
    private volatile bool _disposed; // 1 once protection ended one way or another (given up, fenced, exited, stopped, crashed)
    private readonly IVolumeReplica? _volumes;
    private readonly List<(byte[] Buffer, int Length)> _volumeStage = []; // this epoch's VOLUME_OPS bodies, taken in the pause
    private readonly Action<ReadOnlySpan<byte>> _stageVolumeOps;       // one delegate, not one per pause
    private bool _journaling;            // the copy is complete: each pause drains the journal
    private bool _volumesStopped;        // StopTracking was called (under the pause lock)
    private volatile bool _copying;      // the initial synchronisation is writing: heartbeats may go inside its epochs
    private IWitnessLease? _lease;                          // the witness key, held from Protect on (null: no witness)
    private Thread? _witnessWatch;
    private readonly ManualResetEventSlim _witnessQuiet = new(); // set: the witness watch stops
    private readonly ManualResetEventSlim _leaseLost = new();    // set: the lease is lost; the epoch loop stops
    private volatile bool _backupLost;   // protection was lost (not fenced): the witness decides whether the domain runs
    private bool _witnessPaused;         // the witness watch paused the domain (under the pause lock)
    private int _fenceOnce;
    private readonly System.IO.Stream _forward;
    private string _witnessDomain;       // the witness key's domain name: the option's, or the configuration's "name"

    /// <param name="back">the backup's acks (the reverse direction of the channel); null with a blackhole</param>
    public RemusPrimary(ICheckpointable domain, OutputCommitConsole console, System.IO.Stream forward, System.IO.Stream? back, RemusOptions options)
    {
        _domain = domain;
        _console = console;
        _options = options;
        _witnessDomain = options.DomainName;
        _timeout = options.Timeout;
        _acks = back == null || options.Blackhole ? null : new AckPump(back);
        _forward = forward;
        _writer = new CheckpointWriter(forward, options.Compress ? CheckpointWriterOptions.Default : CheckpointWriterOptions.Uncompressed);
        _dirty = new ulong[domain.DirtyBitmapWords];
        _dirtySet = new DirtyPageSet(domain.DirtyBitmapWords);
        _pages = new DomainPages(domain);
        _volumes = domain.Volumes;
        _stageVolumeOps = StageVolumeOps;
        if (options.HotPageEpochs > 0) _hot = new HotPages(domain.PageCount, options.HotPageLimit, options.HotPageEpochs);
    }

    /// <summary>Raised once, on the loop's thread, when the domain goes on unprotected for a reason other than <see cref="Dispose"/>.</summary>
    public event Action<string>? Unprotected;

    /// <summary>
    /// Raised once when the backup took over (TAKEOVER): this copy's held output was dropped and its domain paused;
    /// the host must stop it for good and never release anything more from it.
    /// </summary>
    public event Action<string>? Fenced;

    /// <summary>Progress of the initial synchronisation.</summary>
    public event Action<MigrationProgress>? Progress;

    public bool IsProtected { get; private set; }

    /// <summary>Whether the backup took over, or another copy holds the witness key (see <see cref="Fenced"/>).</summary>
    public bool IsFenced { get; private set; }

    /// <summary>Whether the witness watch has paused the domain (backup lost, lease not valid: fail-stop until it is).</summary>
    public bool IsWitnessPaused
    {
        get { lock (_pauseLock) return _witnessPaused; }
    }

    /// <summary>The witness lease this primary holds (null: no witness, or not yet taken).</summary>
    public IWitnessLease? WitnessLease => _lease;

    /// <summary>The fault-injection crash that stopped this primary, if one did (see <see cref="RemusOptions.OnStep"/>).</summary>
    public RemusCrashException? Crash { get; private set; }

    /// <summary>T as adopted from the backup's HELLO (the option's value before the handshake, and with a blackhole).</summary>
    public TimeSpan Timeout => _timeout;

    /// <summary>Why the epoch loop ended (null while it runs).</summary>
    public string? EndReason { get; private set; }
    /// <summary>Bytes the vCPU's thread allocated for the last checkpoint's state capture (-1: not measured; tests of issue 14).</summary>
    internal long CaptureAllocatedOnVcpuThread => _states.AllocatedOnVcpuThread;

    public RemusStats Stats => _counters.Snapshot() with { Net = _console.NetStats };

    /// <summary>
    /// The handshake, the initial synchronisation and the first checkpoint; returns once the backup holds a complete
    /// checkpoint and the epoch loop runs. On failure the domain keeps running unprotected (or, if the backup took
    /// over meanwhile, <see cref="IsFenced"/> is set) and the exception says why.
    /// </summary>
    public void Protect(ReadOnlyMemory<byte> config)
    {
        bool holding = false;
        try
        {
            if (_acks != null) Handshake();
            Write(() => _writer.WriteHeader(new StreamHeader(config) { Version = 2 })); // RELEASE and EXIT are version 2
            if (_acks != null)
            {
                _heartbeat = new Thread(Heartbeats) { Name = "remus-heartbeat", IsBackground = true };
                _heartbeat.Start();
            }
            if (_options.Witness is { } witness) TakeWitnessKey(witness, config);
            long sent = 0;
            bool pausedBefore = _domain.State == DomainState.Paused;
            // The writer is taken one record (one round of pages) at a time, so that heartbeats go between them while
            // a large volume is read: the backup hears from us even if a round takes longer than its timeout.
            var volumes = _volumes == null ? null : new VolumeCopy(_volumes, _writer, _writeLock)
            {
                EpochBytes = _options.VolumeEpochBytes,
                Wrote = () => _lastWrite = Stopwatch.GetTimestamp(),
                EpochClosed = e => Step(RemusStep.SyncRound, e),
            };
            _copying = true;
            try
            {
                // Each round travels as epochs of at most SyncEpochPages pages: the backup applies and acks them one by
                // one (its buffer bounded) and heartbeats can go between them; within an epoch SyncWriting beats when
                // reading the pages holds up the bytes.
                _epoch = PreCopy.Run(_domain, _writer, _dirty, _options.MaxInitialRounds, 256,
                    p =>
                    {
                        if (!p.Partial) Step(RemusStep.SyncRound, (ulong)p.Round);
                        Progress?.Invoke(p);
                        _lastWrite = Stopwatch.GetTimestamp();
                    }, ref sent,
                    volumes, _writeLock, _options.SyncEpochPages, SyncWriting);
            }
            finally
            {
                _copying = false;
            }
            if (IsFenced) // the witness lease was lost during the copy; the copy's last unpause must not stand
            {
                lock (_pauseLock) _domain.Pause();
                throw new LeaseLostException();
            }
            _lastWrite = Stopwatch.GetTimestamp();
            // The pre-copy paused the domain to start the dirty log and unpaused it; until the vCPU thread takes that
            // up, State still reads Paused. That is our own resume, not someone else's pause: without this the first
            // Suspend (at once, with a blackhole) took it for one and left the domain paused for good.
            if (!pausedBefore)
                lock (_pauseLock) _resumePending = _domain.State == DomainState.Paused;
            // Room to stage what the program has populated (up to 32 MiB), touched now rather than in a pause.
            _staged.Reserve((int)Math.Min(sent, StagedPages.ReserveLimit));
            // The backup applies the copy's epochs one by one (each at most SyncEpochPages); heartbeats keep it from
            // timing out meanwhile, and nothing is released on these acks, so this wait is only a bound on a stuck
            // backup: max(4T, 10 s) for each ack after the previous one, so it grows with the amount to apply.
            if (_acks != null) PreCopy.AwaitAcks(_acks, _epoch, TimeSpan.FromTicks(Math.Max(_timeout.Ticks * 4, TimeSpan.FromSeconds(10).Ticks)));
            _console.StartHolding();
            holding = true;
            IsProtected = true;
            if (!RunEpoch())
            {
                FinishExit();
                return;
            }
        }
        catch (RemusCrashException crash)
        {
            Crashed(crash);
            throw;
        }
        catch (ProtectionException e) when (e.InnerException is RefusedException)
        {
            Quiet();
            throw;
        }
        catch (Exception e)
        {
            string reason = e is TakenOverException ? "the backup took over" : Describe(e);
            if (holding) LoseBackup(reason, e is TakenOverException);
            else
            {
                // Nothing held yet and no checkpoint on the backup: it cannot take over. Tell it anyway.
                Interlocked.Exchange(ref _ended, 1);
                IsProtected = false;
                TryWriteRelease(Describe(e));
                Quiet();
            }
            if (Crash != null) throw Crash;
            throw new ProtectionException(IsFenced ? (_lease is { Lost: true } ? EndReason ?? reason : $"the backup took over the domain: {reason}") : reason, e);
        }
        _loop = new Thread(Loop) { Name = "remus-epochs", IsBackground = true };
        _loop.Start();
        WatchForTakeover();
    }

    private long _syncBytes = -1; // the writer's byte count at the last SyncWriting

    /// <summary>
    /// Called by the pre-copy under the writer lock after each slice of pages: a liveness stamp when bytes went out
    /// (a record was flushed), else, once nothing went out for the heartbeat period (reading the pages is slow: a huge
    /// or starved domain), a HEARTBEAT inside the epoch — the heartbeat thread cannot write while the copy holds the lock.
    /// </summary>
    private void SyncWriting()
    {
        long bytes = _writer.Statistics.BytesWritten;
        if (bytes != _syncBytes)
        {
            _syncBytes = bytes;
            _lastWrite = Stopwatch.GetTimestamp();
            return;
        }
        if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastWrite)) < RemusOptions.HeartbeatPeriod(_timeout)) return;
        _writer.WriteHeartbeat();
        _syncBytes = _writer.Statistics.BytesWritten;
        _lastWrite = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// Takes the domain's witness key (before anything of the domain reaches the backup, and so before any output is
    /// held or released under protection), gates the console by its lease and starts the witness watch.
    /// </summary>
    private void TakeWitnessKey(IWitness witness, ReadOnlyMemory<byte> config)
    {
        if (_witnessDomain.Length == 0) _witnessDomain = RemusBackup.NameInConfig(config);
        var me = _options.Holder ?? new WitnessHolder(Environment.MachineName, Environment.ProcessId, "primary");
        try
        {
            _lease = witness.Acquire(_witnessDomain, me, _options.WitnessTtl, _stop.Token);
        }
        catch (WitnessException e)
        {
            throw new ProtectionException($"cannot take the witness key of domain '{_witnessDomain}': {e.Message}", e);
        }
        _console.Lease = _lease;
        _witnessWatch = new Thread(WatchWitness) { Name = "remus-witness", IsBackground = true };
        _witnessWatch.Start();
    }

    /// <summary>How often the witness watch looks at the lease: TTL/10, between 2 and 50 ms (a field read each time).</summary>
    private static TimeSpan WitnessLook(TimeSpan ttl) =>
        TimeSpan.FromTicks(Math.Clamp(ttl.Ticks / 10, TimeSpan.FromMilliseconds(2).Ticks, TimeSpan.FromMilliseconds(50).Ticks));

    /// <summary>
    /// The witness watch, from <see cref="Protect"/> to <see cref="Dispose"/>: lease lost → fenced; lease valid →
    /// held output the gate kept goes out, a domain it paused resumes; lease not valid with the backup lost → the
    /// domain is paused (fail-stop, output held).
    /// </summary>
    private void WatchWitness()
    {
        var lease = _lease!;
        var look = WitnessLook(lease.Ttl);
        while (!_witnessQuiet.Wait(look))
        {
            if (IsFenced || Crash != null) return;
            if (lease.Lost)
            {
                _leaseLost.Set();
                FenceByWitness();
                return;
            }
            if (Stopwatch.GetTimestamp() < lease.ValidUntil)
            {
                _console.Flush();
                ResumeAfterWitness();
            }
            else if (_backupLost) PauseForWitness();
        }
    }

    /// <summary>Backup lost and lease not valid: the domain stops until the lease is valid again (its output held).</summary>
    private void PauseForWitness()
    {
        lock (_pauseLock)
        {
            if (_witnessPaused || IsFenced || Crash != null || _disposed) return;
            try
            {
                if (_domain.State == DomainState.Exited) return;
                if (!_userPaused) _domain.Pause();
            }
            catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { return; }
            _witnessPaused = true;
        }
        EndReason = $"{EndReason}; the witness lease is not valid: domain paused until it is";
    }

    /// <summary>The lease is valid again: a domain the witness watch paused runs again (unless the user paused it).</summary>
    private void ResumeAfterWitness()
    {
        lock (_pauseLock)
        {
            if (!_witnessPaused || IsFenced || Crash != null) return;
            _witnessPaused = false;
            try
            {
                if (!_userPaused && _domain.State == DomainState.Paused) Resume();
            }
            catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { }
        }
    }

    /// <summary>Another copy holds the witness key (or it is gone): fenced, whatever the state of the backup channel.</summary>
    private void FenceByWitness()
    {
        // No LoseBackup after this: nothing goes on unprotected. Nothing is written to the backup either (a write could
        // block on a stalled channel, and the fence must not wait): it hears nothing, and finds the key held.
        Interlocked.Exchange(ref _ended, 1);
        Fence($"another copy holds the witness key of domain '{_witnessDomain}' (this one's lease is lost); " +
              "this copy's held output is dropped and it must not run again", full: true);
    }

    /// <summary>Reads the backup's HELLO (bounded wait) and adopts its timeout T, or refuses a T that cannot work.</summary>
    private void Handshake()
    {
        BackRecord hello;
        try
        {
            hello = _acks!.NextRecord(_options.HandshakeTimeout, "the backup's HELLO");
        }
        catch (TimeoutException)
        {
            throw new ProtectionException($"the backup did not introduce itself (no HELLO within {_options.HandshakeTimeout.TotalSeconds:F0} s): " +
                                          "is it 'remus migrate-receive -r' of this version?", new RefusedException());
        }
        if (hello.Kind == BackRecordKind.End)
            throw new ProtectionException("the backup ended the connection before introducing itself (HELLO)", new RefusedException());
        if (hello.Kind != BackRecordKind.Hello || hello.Version < 2)
            throw new ProtectionException("the backup did not introduce itself (HELLO): it speaks an older Remus protocol", new RefusedException());
        if (hello.Timeout < RemusOptions.MinTimeout)
            throw new ProtectionException(
                $"the backup's --timeout of {hello.Timeout.TotalMilliseconds:F0} ms is too short: it must be at least " +
                $"{RemusOptions.MinTimeout.TotalMilliseconds:F0} ms (heartbeats go every timeout/4 and an epoch's output is released " +
                "only if its ack comes within timeout - max(10%, 20 ms))", new RefusedException());
        _timeout = hello.Timeout;
    }

    private void Loop()
    {
        var next = Stopwatch.GetTimestamp();
        // The last handle is output commit's pressure (held output at its bound while the open epoch holds some):
        // the epoch ends now, so that its output is released one ack later and the waiting writer goes on.
        WaitHandle[] handles = _acks == null
            ? new[] { _stop.Token.WaitHandle, _leaseLost.WaitHandle, _console.Pressure }
            : new[] { _stop.Token.WaitHandle, _leaseLost.WaitHandle, _acks.TakeoverSeen, _console.Pressure };
        while (true)
        {
            next += (long)(_options.Interval.TotalSeconds * Stopwatch.Frequency);
            long wait = next - Stopwatch.GetTimestamp();
            int woke = WaitHandle.WaitAny(handles, wait > 0 ? TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency) : TimeSpan.Zero);
            if (woke == handles.Length - 1) (wait, woke) = (-1, WaitHandle.WaitTimeout); // early: as if the interval were over
            if (woke == 0) break;
            if (woke == 1)
            {
                FenceByWitness();
                return;
            }
            if (woke == 2)
            {
                LoseBackup("the backup took over", takenOver: true);
                return;
            }
            if (wait < 0) next = Stopwatch.GetTimestamp();
            try
            {
                if (!RunEpoch())
                {
                    FinishExit();
                    return;
                }
            }
            catch (RemusCrashException crash)
            {
                Crashed(crash);
                return;
            }
            catch (LeaseLostException)
            {
                FenceByWitness();
                return;
            }
            catch (Exception e)
            {
                LoseBackup(e is TakenOverException ? "the backup took over" : Describe(e), e is TakenOverException);
                return;
            }
        }
        EndReason ??= "stopped";
    }

    /// <summary>One checkpoint. False when the domain has exited (the caller sends the EXIT epoch).</summary>
    private bool RunEpoch()
    {
        if (!Suspend()) return false;
        Postcopy();
        Checkpoint();
        return true;
    }

    private bool _suspendPaused;   // this checkpoint paused the guest (and must resume it)
    private bool _userPaused;      // the user paused the guest (Pause), until Unpause
    private bool _resumePending;   // we resumed the guest but its vCPU thread had not taken it up yet

    /// <summary>
    /// The seed's suspend callback: pause, harvest, copy out, close the output epoch. Records whether the guest was
    /// already paused (by the user, or by itself) so that <see cref="Postcopy"/> resumes only what it paused. Holds
    /// the pause lock until <see cref="Postcopy"/> resumed, so a user's pause cannot land in the window and be undone.
    /// </summary>
    private bool Suspend()
    {
        Step(RemusStep.BeforeSuspend, _epoch);
        Monitor.Enter(_pauseLock);
        try
        {
            long t0 = Stopwatch.GetTimestamp();
            // Paused already: by the user (through Pause), or by the guest itself. A Paused state that is only our own
            // previous resume not yet taken up by the vCPU thread (see ResumeIfSuspended) does not count.
            _suspendPaused = !_userPaused && (_domain.State != DomainState.Paused || _resumePending);
            _domain.PauseForCapture(_states); // the vCPU thread captures as it parks, while this thread harvests
            if (_domain.State == DomainState.Exited)
            {
                _suspendPaused = false;
                Monitor.Exit(_pauseLock);
                return false;
            }
            if (_preCopyLeft) TakePreCopyLeft();
            _domain.HarvestDirty(_dirtySet);
            var pfns = ListDirty();
            _staged.Stage(_pages, pfns);
            _stagedThisEpoch = pfns.Length;
            _domain.CaptureStates(_states); // taken at the park (PauseForCapture) when the program has one thread
            StageVolumes(); // after the capture: the vCPU thread's capture runs beside the harvest and staging only
            ComposeState(_console.SealEpoch(_epoch));
            _pauseTicks = Stopwatch.GetTimestamp() - t0;
            Step(RemusStep.Staged, _epoch);
            return true;
        }
        catch (RemusCrashException)
        {
            Monitor.Exit(_pauseLock); // a crashed primary's domain stays paused
            throw;
        }
        catch
        {
            ResumeIfSuspended();
            throw;
        }
    }

    /// <summary>This epoch's KERNEL_STATE body: the kernel state and the epoch's output, in <see cref="_stateBody"/>.</summary>
    private void ComposeState(byte[] output)
    {
        int length = RemusState.Length(_states.Kernel.Length, output.Length);
        if (length > _stateBody.Length) _stateBody = new byte[Math.Max(length, 2 * _stateBody.Length)];
        _stateLength = RemusState.Compose(_states.Kernel, output, _stateBody).Length;
    }

    /// <summary>
    /// The first pause: the pages the initial synchronisation's last round harvested but did not send go into this
    /// epoch (one walk of the whole bitmap, once).
    /// </summary>
    private void TakePreCopyLeft()
    {
        for (int i = 0; i < _dirty.Length; i++) _dirtySet.OrWord(i, _dirty[i]);
        Array.Clear(_dirty);
        _preCopyLeft = false;
    }

    /// <summary>The program's pages in <see cref="_dirtySet"/>, ascending, in <see cref="_pfns"/>; empties the set.</summary>
    private ReadOnlySpan<ulong> ListDirty()
    {
        ulong first = _domain.ProgramFirstPage, limit = _domain.PageCount;
        int n = _dirtySet.CopyTo(_pfns, first, limit);
        if (n > _pfns.Length) // more than any epoch before: grow (in the pause, once per new maximum) and list again
        {
            _pfns = new ulong[Math.Max(n, 2 * _pfns.Length)];
            n = _dirtySet.CopyTo(_pfns, first, limit);
        }
        _dirtySet.Clear();
        return _pfns.AsSpan(0, n);
    }

    /// <summary>
    /// In the pause: the volumes' part of this epoch, buffered until <see cref="Checkpoint"/> writes it. The first
    /// checkpoint runs the copy's last round (paused) and starts the journal; every later one drains the journal.
    /// </summary>
    private void StageVolumes()
    {
        if (_volumes == null || _volumesStopped) return;
        if (_journaling) _volumes.DrainJournal(_stageVolumeOps);
        else
        {
            _volumes.DrainCopy(_stageVolumeOps);
            _volumes.BeginJournal();
            _journaling = true;
        }
    }

    private void StageVolumeOps(ReadOnlySpan<byte> body)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(body.Length);
        body.CopyTo(buffer);
        _volumeStage.Add((buffer, body.Length));
    }

    /// <summary>Writes the staged VOLUME_OPS bodies (under the writer lock) and returns their buffers.</summary>
    private void WriteStagedVolumes()
    {
        try
        {
            foreach (var (buffer, length) in _volumeStage) _writer.WriteVolumeOps(buffer.AsSpan(0, length));
        }
        finally
        {
            foreach (var (buffer, _) in _volumeStage) ArrayPool<byte>.Shared.Return(buffer);
            _volumeStage.Clear();
        }
    }

    /// <summary>Protection ended: the volumes stop remembering and journaling (once; under the pause lock, as the drains are).</summary>
    private void StopVolumes()
    {
        if (_volumes == null) return;
        lock (_pauseLock)
        {
            if (_volumesStopped) return;
            _volumesStopped = true;
            try { _volumes.StopTracking(); }
            catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException) { /* nothing more to keep anyway */ }
        }
    }

    /// <summary>Ends the pause window: resumes the guest if (and only if) this checkpoint paused it.</summary>
    private void ResumeIfSuspended()
    {
        try
        {
            if (_suspendPaused && _domain.State == DomainState.Paused) Resume();
            else if (_domain.State != DomainState.Paused) _resumePending = false;
        }
        finally
        {
            _suspendPaused = false;
            Monitor.Exit(_pauseLock);
        }
    }

    /// <summary>
    /// Unpauses the domain. A domain reports Paused until its vCPU thread has taken up the resume: wait for that
    /// (briefly), and remember if it has not, so that the next Suspend can tell "paused by someone else" from "our
    /// resume, not yet running". Under the pause lock.
    /// </summary>
    private void Resume()
    {
        if (IsFenced) return; // a fenced domain never runs again (the witness may fence it from its own thread)
        _domain.Unpause();
        var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        var spin = new SpinWait();
        while (_domain.State == DomainState.Paused && Stopwatch.GetTimestamp() < until) spin.SpinOnce(sleep1Threshold: 20);
        _resumePending = _domain.State == DomainState.Paused;
    }

    /// <summary>
    /// The seed's postcopy callback: the dirty pages are copied, the guest resumes at once (unless it was paused
    /// before the checkpoint). Then, while it runs, the pages that did not change are dropped and those that keep
    /// changing are left untracked.
    /// </summary>
    private void Postcopy()
    {
        ResumeIfSuspended();
        Step(RemusStep.Resumed, _epoch);
        if (_hot == null) return;
        _hot.Filter(_staged, _epoch);
        _domain.SetUntracked(_hot.Untracked);
    }

    /// <summary>The seed's checkpoint callback: send, wait for the ack within the lease, release the epoch's output.</summary>
    private void Checkpoint()
    {
        long before = _writer.Statistics.BytesWritten;
        EpochSummary sent = default;
        lock (_writeLock)
        {
            _writer.WritePages(_staged.Pfns, _staged);
            Step(RemusStep.PagesSent, _epoch);
            WriteStagedVolumes();
            for (int i = 0; i < _states.VcpuCount; i++) _writer.WriteVcpuState((uint)i, _states.Vcpu(i));
            _writer.WriteKernelState(_stateBody.AsSpan(0, _stateLength));
            sent = _writer.EndCheckpoint(_epoch);
            _lastWrite = Stopwatch.GetTimestamp();
        }
        long t1 = _lastWrite;
        Step(RemusStep.EndSent, _epoch);
        AwaitAck(sent, t1);
        Step(RemusStep.Acked, _epoch);
        if (_lease != null)
        {
            if (_lease.Lost) throw new LeaseLostException();
            _lease.NoteEpoch(_epoch);
        }
        _console.Release(_epoch); // gated by the witness lease: held (not dropped) while it is not valid
        Step(RemusStep.Released, _epoch);
        double ackMs = (Stopwatch.GetTimestamp() - t1) * 1000.0 / Stopwatch.Frequency;
        _counters.Record(_pauseTicks * 1000.0 / Stopwatch.Frequency, ackMs, _writer.Statistics.BytesWritten - before,
            _writer.Statistics.CompressionRatio, _staged.Count);
        if (_stagedThisEpoch > _staged.Capacity / 2) _staged.Reserve((int)Math.Min(2L * _stagedThisEpoch, StagedPages.MaxPages)); // grow now, not in a pause
        _epoch++;
    }

    /// <summary>
    /// Waits for the ack of <paramref name="sent"/>, whose CHECKPOINT_END was written at <paramref name="endTicks"/>.
    /// Returns only if the right ack came within the lease (T − margin after the end was written) and the backup
    /// has not said TAKEOVER; throws otherwise (TakenOverException for TAKEOVER).
    /// </summary>
    private void AwaitAck(EpochSummary sent, long endTicks)
    {
        if (_acks == null) return;
        var lease = _timeout - RemusOptions.Margin(_timeout);
        var left = lease - Stopwatch.GetElapsedTime(endTicks);
        BackRecord record;
        try
        {
            record = _acks.NextAck(left, sent.Epoch);
        }
        catch (TimeoutException)
        {
            throw new ProtectionException($"no acknowledgement of epoch {sent.Epoch} within {lease.TotalMilliseconds:F0} ms (the backup's timeout less the margin)");
        }
        switch (record.Kind)
        {
            case BackRecordKind.Takeover:
                throw new TakenOverException();
            case BackRecordKind.Ack when !record.Ack.Confirms(sent):
                throw new ProtectionException($"the backup acknowledged epoch {record.Ack.Epoch}, expected {sent.Epoch}");
            case BackRecordKind.Ack:
                break;
            default:
                throw new ProtectionException($"the backup closed the connection ({record.Kind.ToString().ToUpperInvariant()} instead of an acknowledgement)");
        }
        var took = Stopwatch.GetElapsedTime(endTicks);
        if (took > lease)
            throw new ProtectionException($"the acknowledgement of epoch {sent.Epoch} came after {took.TotalMilliseconds:F0} ms, past the lease of {lease.TotalMilliseconds:F0} ms");
        if (_acks.IsTakeoverSeen) throw new TakenOverException();
    }

    /// <summary>
    /// The program exited: its last output goes to the backup in an EXIT epoch and is released only once that epoch
    /// is acked (within the lease); then END. If the backup is lost on the way, <see cref="LoseBackup"/> decides.
    /// </summary>
    private void FinishExit()
    {
        if (Interlocked.CompareExchange(ref _ended, 1, 0) != 0) return;
        EndReason = "the program exited";
        try
        {
            byte[] output = _console.SealEpoch(_epoch);
            lock (_pauseLock) StageVolumes(); // the program's last volume operations travel with its exit
            EpochSummary sent;
            lock (_writeLock)
            {
                WriteStagedVolumes();
                _writer.WriteExit(_domain.ExitStatus, output);
                sent = _writer.EndCheckpoint(_epoch);
                _lastWrite = Stopwatch.GetTimestamp();
            }
            long end = _lastWrite;
            Step(RemusStep.ExitSent, _epoch);
            AwaitAck(sent, end);
            Step(RemusStep.Acked, _epoch);
            IsProtected = false;
            _console.StopHolding();
            Step(RemusStep.Released, _epoch);
            lock (_writeLock) _writer.WriteEnd();
            Quiet();
            Step(RemusStep.EndWritten, _epoch);
        }
        catch (RemusCrashException crash)
        {
            Crashed(crash);
        }
        catch (Exception e) when (!_writer.IsOpen && !IsProtected && e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            Quiet(); // the output is out; END could not be written: the backup sees EOF after an acked EXIT and ends there too
        }
        catch (Exception e)
        {
            Interlocked.Exchange(ref _ended, 0);
            LoseBackup(e is TakenOverException ? "the backup took over" : Describe(e), e is TakenOverException);
            EndReason = "the program exited";
        }
    }

    /// <summary>
    /// The backup is lost (or took over). Nothing held is released before the backup is known not to run: RELEASE,
    /// then up to T + margin for RELEASED (release), TAKEOVER (fenced: drop, never release), or nothing (release).
    /// </summary>
    private void LoseBackup(string reason, bool takenOver)
    {
        if (Interlocked.CompareExchange(ref _ended, 1, 0) != 0) return;
        IsProtected = false;
        EndReason = reason;
        try
        {
            _lease?.BeginUnprotected(); // the gate stays closed until the witness knows (IWitnessLease.BeginUnprotected)
            Step(RemusStep.GivingUp, _epoch);
            string how;
            if (takenOver || _acks?.IsTakeoverSeen == true) how = "takeover";
            else
            {
                bool told = TryWriteRelease(reason);
                if (told) Step(RemusStep.ReleaseSent, _epoch);
                how = AwaitReleaseAnswer();
                if (!told && how == "no answer") how = "the backup could not be told (RELEASE not written)";
            }
            if (how == "takeover")
            {
                Fence(reason);
                return;
            }
            if (_lease is { Lost: true })
            {
                Fence($"another copy holds the witness key of domain '{_witnessDomain}' (this one's lease is lost; {reason}); " +
                      "this copy's held output is dropped and it must not run again", full: true);
                return;
            }
            _backupLost = true; // from now on the witness watch pauses the domain whenever the lease is not valid
            Quiet();
            _console.StopHolding();
            string why = $"{reason}; {how}";
            EndReason = why;
            WatchForLateTakeover();
            Unprotected?.Invoke(why);
        }
        catch (RemusCrashException crash)
        {
            Crashed(crash);
        }
    }

    /// <summary>Writes RELEASE if the stream is between epochs and whole; false if it could not be written.</summary>
    private bool TryWriteRelease(string reason)
    {
        lock (_writeLock)
        {
            if (!_writer.IsOpen || _writer.InEpoch) return false;
            try
            {
                _writer.WriteRelease(reason);
                _lastWrite = Stopwatch.GetTimestamp();
                return true;
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
            {
                return false;
            }
        }
    }

    /// <summary>Up to T + margin for the backup's answer to RELEASE: "takeover", or a description of the other outcomes.</summary>
    private string AwaitReleaseAnswer()
    {
        if (_acks == null) return "no backup";
        var deadline = Stopwatch.GetTimestamp() + (long)((_timeout + RemusOptions.Margin(_timeout)).TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (_acks.IsTakeoverSeen) return "takeover";
            var left = TimeSpan.FromSeconds((double)(deadline - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
            BackRecord record;
            try
            {
                record = _acks.NextRecord(left, "the backup's answer to RELEASE");
            }
            catch (TimeoutException)
            {
                return _acks.IsTakeoverSeen ? "takeover" : "no answer from the backup within the timeout";
            }
            catch (Exception e) when (e is IOException or CheckpointStreamException or ObjectDisposedException or InvalidOperationException)
            {
                return _acks.IsTakeoverSeen ? "takeover" : $"the backup's channel is gone ({e.Message})";
            }
            switch (record.Kind)
            {
                case BackRecordKind.Takeover: return "takeover";
                case BackRecordKind.Released: return "the backup discarded its copy";
                case BackRecordKind.End: return "the backup ended its channel";
            }
            // A late ack: not grounds to release anything; keep waiting for the answer.
        }
    }

    /// <summary>
    /// After giving up with no answer, a backup that was only slow to notice the silence (beyond its timeout and this
    /// primary's T + margin) may still say TAKEOVER: then this copy stops at once, so that two do not run on.
    /// </summary>
    private void WatchForLateTakeover()
    {
        if (_acks == null) return;
        try
        {
            ThreadPool.RegisterWaitForSingleObject(_acks.TakeoverSeen, (_, timedOut) =>
            {
                if (!timedOut && !IsFenced && !_disposed) Fence("the backup took over after this primary had given up on it");
            }, null, System.Threading.Timeout.Infinite, executeOnlyOnce: true);
        }
        catch (ObjectDisposedException) { /* stopped meanwhile */ }
    }

    /// <summary>
    /// TAKEOVER fences this copy at once, whatever the epoch loop is doing: it may be blocked writing a checkpoint
    /// into a forward direction that stopped carrying bytes (a full send buffer), where it would never look. The
    /// forward stream is closed so that the blocked write fails and the loop ends.
    /// </summary>
    private void WatchForTakeover()
    {
        if (_acks == null) return;
        try
        {
            ThreadPool.RegisterWaitForSingleObject(_acks.TakeoverSeen, (_, timedOut) =>
            {
                if (timedOut || IsFenced || _disposed) return;
                Fence("the backup took over");
                try { _forward.Dispose(); } catch (Exception e) when (e is IOException or ObjectDisposedException) { }
            }, null, System.Threading.Timeout.Infinite, executeOnlyOnce: true);
        }
        catch (ObjectDisposedException) { /* stopped meanwhile */ }
    }

    /// <summary>The backup took over: drop everything held, pause the domain for good, tell the host.</summary>
    private void Fence(string reason, bool full = false)
    {
        if (Interlocked.Exchange(ref _fenceOnce, 1) != 0) return;
        IsFenced = true;
        IsProtected = false;
        _console.Fence();
        Quiet();
        lock (_pauseLock)
        {
            try { if (_domain.State != DomainState.Exited) _domain.Pause(); }
            catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { /* it is going anyway */ }
        }
        string why = full ? reason : $"the backup took over the domain ({reason}); this copy's held output is dropped and it must not run again";
        EndReason = why;
        try { Step(RemusStep.Fenced, _epoch); }
        catch (RemusCrashException crash) { Crash = crash; }
        Fenced?.Invoke(why);
    }

    /// <summary>A fault-injection crash: nothing more is released or written; the domain stays paused.</summary>
    private void Crashed(RemusCrashException crash)
    {
        Interlocked.Exchange(ref _ended, 1);
        Crash = crash;
        IsProtected = false;
        EndReason = crash.Message;
        _console.Fence();
        Quiet();
        lock (_pauseLock)
        {
            try { if (_domain.State != DomainState.Exited) _domain.Pause(); }
            catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { }
        }
    }

    /// <summary>Heartbeats stop and the volumes stop tracking (protection ended).</summary>
    private void Quiet()
    {
        _quiet.Set();
        StopVolumes();
    }

    /// <summary>
    /// Writes a HEARTBEAT whenever nothing was written for T/4, between epochs and during the initial
    /// synchronisation (while the backup applies rounds). Skips a beat while the loop holds the writer (it is
    /// writing: bytes flow anyway).
    /// </summary>
    private void Heartbeats()
    {
        try
        {
            while (true)
            {
                var period = RemusOptions.HeartbeatPeriod(_timeout);
                if (_quiet.Wait(period / 4)) return;
                if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastWrite)) < period) continue;
                if (!Monitor.TryEnter(_writeLock)) continue;
                try
                {
                    if (_quiet.IsSet || !_writer.IsOpen || (_writer.InEpoch && !_copying)) continue;
                    _writer.WriteHeartbeat();
                    _lastWrite = Stopwatch.GetTimestamp();
                }
                finally
                {
                    Monitor.Exit(_writeLock);
                }
                Step(RemusStep.Heartbeat, _epoch);
            }
        }
        catch (RemusCrashException crash)
        {
            Crashed(crash);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            // The channel broke: the epoch loop finds out on its next write or ack.
        }
    }

    /// <summary>Pauses the protected domain (the user's pause): it stays paused across checkpoints until <see cref="Unpause"/>.</summary>
    public void Pause()
    {
        lock (_pauseLock)
        {
            _domain.Pause();
            _userPaused = true;
        }
    }

    /// <summary>Unpauses the protected domain (the user's unpause). A fenced domain never runs again.</summary>
    public void Unpause()
    {
        lock (_pauseLock)
        {
            if (IsFenced || Crash != null) throw new InvalidOperationException("the backup took over this domain; it does not run here again");
            _userPaused = false;
            if (_witnessPaused) return; // it runs again once the witness lease is valid
            Resume();
        }
    }

    private void Write(Action write)
    {
        lock (_writeLock)
        {
            write();
            _lastWrite = Stopwatch.GetTimestamp();
        }
    }

    private void Step(RemusStep step, ulong epoch)
    {
        if (Crash is { } crashed) throw crashed; // crashed on another thread (a heartbeat): this side is dead
        RemusCrashException.Report(_options, step, epoch);
    }

    private static string Describe(Exception e) => e switch
    {
        IOException io => $"the connection to the backup broke ({io.Message})",
        ObjectDisposedException => "the connection to the backup was closed",
        AggregateException { InnerException: { } inner } => Describe(inner),
        _ => e.Message,
    };

    /// <summary>
    /// Ends protection on purpose: stops the loop, writes END (the backup then discards its copy and never takes
    /// over), and only then releases held output. If the program has exited meanwhile, its EXIT epoch goes first.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        _stop.Cancel();
        if (_loop != null && _loop != Thread.CurrentThread) _loop.Join();
        if (IsProtected && _domain.State == DomainState.Exited) FinishExit();
        if (Interlocked.CompareExchange(ref _ended, 1, 0) == 0)
        {
            EndReason ??= "stopped";
            if (IsProtected)
            {
                try
                {
                    lock (_writeLock) if (_writer.IsOpen && !_writer.InEpoch) _writer.WriteEnd();
                }
                catch (Exception) { /* the backup is gone anyway */ }
            }
            IsProtected = false;
            _console.StopHolding();
        }
        Quiet();
        _heartbeat?.Join();
        ReleaseWitnessKey();
        if (_hot != null && _domain.State != DomainState.Exited && !IsFenced && Crash == null)
            try { _domain.SetUntracked(new ulong[_domain.DirtyBitmapWords]); } // track every page again
            catch (Exception e) when (e is SandboxException or InvalidOperationException) { /* it exited meanwhile */ }
        _staged.Dispose();
        _acks?.Dispose();
    }

    /// <summary>
    /// Protection ends (Dispose): the witness watch stops and the key is given up (its lease revoked). Output the gate
    /// held goes out only if the lease is still valid; if not (the backup lost and the witness too), the domain stays
    /// paused and its output held — another copy may hold the key by now. A fenced copy releases nothing.
    /// </summary>
    private void ReleaseWitnessKey()
    {
        if (_lease == null) return;
        _witnessQuiet.Set();
        if (_witnessWatch != null && _witnessWatch != Thread.CurrentThread) _witnessWatch.Join();
        if (!IsFenced && Crash == null && _lease.Lost) FenceByWitness(); // lost before the watch saw it: fenced all the same
        if (!IsFenced && Crash == null && !_lease.Lost)
        {
            bool valid = Stopwatch.GetTimestamp() < _lease.ValidUntil;
            lock (_pauseLock) valid &= !_witnessPaused;
            if (valid) _console.Lease = null; // lets out what the gate held; output passes straight through from now on
            else
            {
                lock (_pauseLock)
                {
                    try { if (_domain.State != DomainState.Exited && !_userPaused) _domain.Pause(); }
                    catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { }
                    _witnessPaused = true;
                }
                EndReason = $"{EndReason}; protection stopped while the witness lease was not valid: the domain stays paused";
            }
        }
        _lease.Dispose();
    }

    /// <summary>The witness lease was found lost where an epoch's output was about to be released.</summary>
    private sealed class LeaseLostException() : Exception("the witness lease is lost");

    /// <summary>The backup said TAKEOVER where an ack was expected.</summary>
    private sealed class TakenOverException() : Exception("the backup took over");

    /// <summary>Marks a refusal at the handshake: nothing was written, nothing to tell the backup.</summary>
    private sealed class RefusedException() : Exception("refused");
}

/// <summary>Protection could not be set up, or the backup gave up; one clear sentence. (Not the toolstack's RemusException.)</summary>
public sealed class ProtectionException(string message, Exception? inner = null) : Exception(message, inner);
