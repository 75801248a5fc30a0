using Remus.Checkpoint.Stream;
using Remus.Sandbox;

namespace Remus.Checkpoint.Remus;

/// <summary>How a backup's watch ended.</summary>
public enum BackupOutcome
{
    /// <summary>The primary was lost with a complete checkpoint here: the domain must take over (failover).</summary>
    Failover,
    /// <summary>The primary ended protection gracefully (END): its program exited or protection was stopped.</summary>
    Ended,
    /// <summary>
    /// The primary sent a corrupt checkpoint: it was refused (the last good one is kept, unapplied epochs are never
    /// applied) and protection ends without a takeover — the primary is evidently alive, and starting the domain
    /// here too would run it twice. The primary sees the connection close and continues unprotected.
    /// </summary>
    Rejected,
}

/// <summary>
/// The backup of a protected domain (`remus migrate-receive -r`): builds the domain from the initial
/// synchronisation, then applies each checkpoint only when it arrived whole and its checksum verified, and acks it.
/// The primary is declared lost on a broken or corrupt stream, EOF, or silence longer than the timeout. With a
/// complete checkpoint, <see cref="Watch"/> returns <see cref="BackupOutcome.Failover"/> and <see cref="Domain"/>
/// is ready to take over (paused): call <see cref="ReplayLastOutput"/>, rename it, unpause it. Without one it throws
/// (nothing is left behind). A corrupt epoch is refused and the last good checkpoint kept.
/// </summary>
public sealed class RemusBackup(System.IO.Stream forward, System.IO.Stream back, RemusOptions options, Action<string>? log = null)
{
    private readonly AckWriter _acks = new(back);
    private byte[] _lastOutput = [];

    public ICheckpointable? Domain { get; private set; }
    public ulong? LastCheckpoint { get; private set; }
    public long Checkpoints { get; private set; }

    /// <summary>The reason the primary was declared lost.</summary>
    public string? LossReason { get; private set; }

    public BackupOutcome Watch(Func<ReadOnlyMemory<byte>, ICheckpointable> build)
    {
        var reader = new CheckpointReader(forward);
        long lastBytes = -1;
        var lastProgress = DateTime.UtcNow;
        using var watchdog = new Timer(_ =>
        {
            long now = reader.BytesRead;
            if (now != lastBytes) { lastBytes = now; lastProgress = DateTime.UtcNow; return; }
            if (DateTime.UtcNow - lastProgress > options.Timeout)
            {
                LossReason ??= $"no checkpoint or heartbeat from the primary for {options.Timeout.TotalMilliseconds:F0} ms";
                forward.Dispose(); // unblocks the reader
            }
        }, null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));

        try
        {
            var header = reader.ReadHeader();
            Domain = build(header.DomainConfig);
            var pages = new DomainPages(Domain);
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch)
                {
                    options.OnStep?.Invoke(RemusStep.BackupReceived, epoch.Number);
                    epoch.ApplyTo(pages);
                    if (epoch.KernelState == null || epoch.VcpuStates.Count == 0)
                    {
                        _acks.WriteAck(epoch); // an initial-sync round: applied, not yet a checkpoint
                        continue;
                    }
                    var (kernel, output) = RemusState.Split(epoch.KernelState);
                    Domain.LoadState(epoch.VcpuStates[0].State, kernel);
                    _lastOutput = output;
                    LastCheckpoint = epoch.Number;
                    Checkpoints++;
                    options.OnStep?.Invoke(RemusStep.BackupApplied, epoch.Number);
                    _acks.WriteAck(epoch);
                    options.OnStep?.Invoke(RemusStep.BackupAcked, epoch.Number);
                }
            }
            Discard();
            return BackupOutcome.Ended;
        }
        catch (CheckpointStreamException e) when (e.Error is not CheckpointStreamError.Truncated && LossReason == null && Domain != null)
        {
            LossReason = $"refused a corrupt checkpoint from the primary: {e.Message}";
            log?.Invoke($"{LossReason}; keeping checkpoint {LastCheckpoint?.ToString() ?? "(none)"} and ending protection");
            back.Dispose();
            return BackupOutcome.Rejected;
        }
        catch (Exception e) when (e is IOException or CheckpointStreamException or ObjectDisposedException or InvalidDataException)
        {
            LossReason ??= e switch
            {
                CheckpointStreamException cs => $"the primary's stream failed: {cs.Message}",
                _ => $"the connection to the primary broke ({e.Message})",
            };
            log?.Invoke($"primary lost: {LossReason}");
            if (LastCheckpoint == null)
            {
                Discard();
                throw new ProtectionException($"the primary was lost before the first complete checkpoint ({LossReason}); nothing to take over");
            }
            return BackupOutcome.Failover;
        }
        catch
        {
            Discard();
            throw;
        }
    }

    /// <summary>Re-emits the output of the last checkpointed epoch (the primary may not have released it).</summary>
    public void ReplayLastOutput(IConsole console) => OutputCommitConsole.Replay(console, _lastOutput);

    private void Discard()
    {
        Domain?.Dispose();
        Domain = null;
    }
}
