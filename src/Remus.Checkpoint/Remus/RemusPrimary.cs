using System.Diagnostics;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;

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
/// When the backup is lost (write error, ack timeout, a wrong ack) the domain goes on unprotected: everything held
/// is released and <see cref="Unprotected"/> says why. With <see cref="RemusOptions.Blackhole"/> the checkpoints
/// go to a sink and output is released once the write completed (the cost of checkpointing without a backup).
/// </summary>
public sealed class RemusPrimary : IDisposable
{
    private readonly ICheckpointable _domain;
    private readonly OutputCommitConsole _console;
    private readonly System.IO.Stream _forward;
    private readonly AckPump? _acks;
    private readonly RemusOptions _options;
    private readonly CheckpointWriter _writer;
    private readonly StagedPages _staged = new();
    private readonly DomainPages _pages;
    private readonly HotPages? _hot;
    private readonly RemusCounters _counters = new();
    private readonly ulong[] _dirty;
    private readonly CancellationTokenSource _stop = new();
    private Thread? _loop;
    private ulong _epoch;
    private byte[] _vcpu = [], _kernel = [];
    private long _pauseTicks;
    private int _stagedThisEpoch;

    /// <param name="back">the backup's acks (the reverse direction of the channel); null with a blackhole</param>
    public RemusPrimary(ICheckpointable domain, OutputCommitConsole console, System.IO.Stream forward, System.IO.Stream? back, RemusOptions options)
    {
        _domain = domain;
        _console = console;
        _forward = forward;
        _options = options;
        _acks = back == null || options.Blackhole ? null : new AckPump(back);
        _writer = new CheckpointWriter(forward, options.Compress ? CheckpointWriterOptions.Default : CheckpointWriterOptions.Uncompressed);
        _dirty = new ulong[domain.DirtyBitmapWords];
        _pages = new DomainPages(domain);
        if (options.HotPageEpochs > 0) _hot = new HotPages(domain.PageCount, options.HotPageLimit, options.HotPageEpochs);
    }

    /// <summary>Raised once, on the loop's thread, when protection ends for a reason other than <see cref="Dispose"/>.</summary>
    public event Action<string>? Unprotected;

    /// <summary>Progress of the initial synchronisation.</summary>
    public event Action<MigrationProgress>? Progress;

    public bool IsProtected { get; private set; }

    /// <summary>Why the epoch loop ended (null while it runs).</summary>
    public string? EndReason { get; private set; }
    public RemusStats Stats => _counters.Snapshot();

    /// <summary>
    /// The initial synchronisation and the first checkpoint; returns once the backup holds a complete checkpoint and
    /// the epoch loop runs. On failure the domain keeps running unprotected and the exception says why.
    /// </summary>
    public void Protect(ReadOnlyMemory<byte> config)
    {
        try
        {
            _writer.WriteHeader(new StreamHeader(config));
            long sent = 0;
            _epoch = PreCopy.Run(_domain, _writer, _dirty, _options.MaxInitialRounds, 256,
                p => { _options.OnStep?.Invoke(RemusStep.SyncRound, (ulong)p.Round); Progress?.Invoke(p); }, ref sent);
            // Room to stage what the program has populated (up to 32 MiB), touched now rather than in a pause.
            _staged.Reserve((int)Math.Min(sent, StagedPages.ReserveLimit));
            // Each initial-sync round may take a while to apply on the backup (all of memory at first): allow 4x --timeout.
            if (_acks != null) PreCopy.AwaitAcks(_acks, _epoch, _options.Timeout * 4);
            _console.StartHolding();
            if (!RunEpoch()) throw new ProtectionException("the backup did not acknowledge the first checkpoint");
        }
        catch (Exception e)
        {
            _console.StopHolding();
            if (_domain.State == DomainState.Paused) _domain.Unpause();
            throw e as ProtectionException ?? new ProtectionException(Describe(e), e);
        }
        IsProtected = true;
        _loop = new Thread(Loop) { Name = "remus-epochs", IsBackground = true };
        _loop.Start();
    }

    private void Loop()
    {
        var next = Stopwatch.GetTimestamp();
        while (!_stop.IsCancellationRequested)
        {
            next += (long)(_options.Interval.TotalSeconds * Stopwatch.Frequency);
            long wait = next - Stopwatch.GetTimestamp();
            if (wait > 0 && _stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency))) break;
            if (wait < 0) next = Stopwatch.GetTimestamp();
            string? failure = null;
            try
            {
                if (!RunEpoch())
                {
                    EndReason = "the program exited";
                    // The program ended: release its last output and tell the backup there is nothing to take over.
                    IsProtected = false;
                    _console.StopHolding();
                    try { _writer.WriteEnd(); _forward.Flush(); } catch (Exception) { /* the backup is gone too */ }
                    return;
                }
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                failure = Describe(e);
            }
            catch
            {
                EndReason = "stopped";
                break;
            }
            if (failure == null) continue;
            IsProtected = false;
            EndReason = failure;
            _console.StopHolding();
            if (_domain.State == DomainState.Paused) _domain.Unpause();
            Unprotected?.Invoke(failure);
            return;
        }
    }

    /// <summary>One checkpoint. False when the domain has exited (nothing left to protect).</summary>
    private bool RunEpoch()
    {
        if (!Suspend()) return false;
        Postcopy();
        Checkpoint();
        return true;
    }

    /// <summary>The seed's suspend callback: pause, harvest, copy out, close the output epoch.</summary>
    private bool Suspend()
    {
        _options.OnStep?.Invoke(RemusStep.BeforeSuspend, _epoch);
        long t0 = Stopwatch.GetTimestamp();
        _domain.Pause();
        if (_domain.State == DomainState.Exited) return false;
        _domain.HarvestDirty(_dirty);
        var pfns = DomainPages.Set(_dirty, _domain);
        Array.Clear(_dirty);
        _staged.Stage(_pages, pfns);
        _stagedThisEpoch = pfns.Length;
        _vcpu = _domain.CaptureVcpuState();
        _kernel = RemusState.Compose(_domain.CaptureKernelState(), _console.SealEpoch(_epoch));
        _pauseTicks = Stopwatch.GetTimestamp() - t0;
        _options.OnStep?.Invoke(RemusStep.Staged, _epoch);
        return true;
    }

    /// <summary>
    /// The seed's postcopy callback: the dirty pages are copied, the guest resumes at once. Then, while it runs, the
    /// pages that did not change are dropped and those that keep changing are left untracked.
    /// </summary>
    private void Postcopy()
    {
        _domain.Unpause();
        _options.OnStep?.Invoke(RemusStep.Resumed, _epoch);
        if (_hot == null) return;
        _hot.Filter(_staged, _epoch);
        _domain.SetUntracked(_hot.Untracked);
    }

    /// <summary>The seed's checkpoint callback: send, wait for the ack, release the epoch's output.</summary>
    private void Checkpoint()
    {
        long before = _writer.Statistics.BytesWritten;
        _writer.WritePages(_staged.Pfns, _staged);
        _options.OnStep?.Invoke(RemusStep.PagesSent, _epoch);
        _writer.WriteVcpuState(_vcpu);
        _writer.WriteKernelState(_kernel);
        var sent = _writer.EndCheckpoint(_epoch);
        long t1 = Stopwatch.GetTimestamp();
        _options.OnStep?.Invoke(RemusStep.EndSent, _epoch);
        if (_acks != null)
        {
            var ack = _acks.Next(_options.Timeout, "the backup's acknowledgement");
            if (ack == null) throw new ProtectionException("the backup closed the connection");
            if (!ack.Value.Confirms(sent)) throw new ProtectionException($"the backup acknowledged epoch {ack.Value.Epoch}, expected {sent.Epoch}");
        }
        _options.OnStep?.Invoke(RemusStep.Acked, _epoch);
        _console.Release(_epoch);
        _options.OnStep?.Invoke(RemusStep.Released, _epoch);
        double ackMs = (Stopwatch.GetTimestamp() - t1) * 1000.0 / Stopwatch.Frequency;
        _counters.Record(_pauseTicks * 1000.0 / Stopwatch.Frequency, ackMs, _writer.Statistics.BytesWritten - before,
            _writer.Statistics.CompressionRatio, _staged.Count);
        if (_stagedThisEpoch > _staged.Capacity / 2) _staged.Reserve((int)Math.Min(2L * _stagedThisEpoch, StagedPages.MaxPages)); // grow now, not in a pause
        _epoch++;
    }

    private static string Describe(Exception e) => e switch
    {
        IOException io => $"the connection to the backup broke ({io.Message})",
        ObjectDisposedException => "the connection to the backup was closed",
        AggregateException { InnerException: { } inner } => Describe(inner),
        _ => e.Message,
    };

    /// <summary>Ends protection: stops the loop, releases held output, and tells the backup (END) when it can.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        if (_loop != null && _loop != Thread.CurrentThread) _loop.Join();
        _console.StopHolding();
        if (IsProtected)
        {
            try { _writer.WriteEnd(); _forward.Flush(); } catch (Exception) { /* the backup is gone anyway */ }
        }
        IsProtected = false;
        if (_hot != null && _domain.State != DomainState.Exited)
            try { _domain.SetUntracked(new ulong[_domain.DirtyBitmapWords]); } // track every page again
            catch (Exception e) when (e is SandboxException or InvalidOperationException) { /* it exited meanwhile */ }
        _staged.Dispose();
        _acks?.Dispose();
    }
}

/// <summary>Protection could not be set up, or the backup gave up; one clear sentence. (Not the toolstack's RemusException.)</summary>
public sealed class ProtectionException(string message, Exception? inner = null) : Exception(message, inner);
