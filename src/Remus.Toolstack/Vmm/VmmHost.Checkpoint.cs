using System.Text.Json;
using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Witness;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Control;
using Remus.Toolstack.Migration;

namespace Remus.Toolstack.Vmm;

/// <summary>The VMM's checkpoint operations: save, live migration, Remus protection, and incoming domains.</summary>
public sealed partial class VmmHost
{
    /// <summary>How long a failed migration or protection waits for its receiver command to end, to say how it did.</summary>
    private static readonly TimeSpan ReceiverGrace = TimeSpan.FromSeconds(2);

    private RemusPrimary? _remus;
    private MigrationChannel? _remusChannel;
    private string? _protectedTo;
    private string? _protectionLost;
    private IWitness? _witness;
    private string? _witnessUrls;
    private volatile bool _fenced;

    /// <summary>
    /// The domain configuration as checkpoint streams carry it (the stream header's JSON): <c>Platform</c> names the
    /// platform the domain runs on here, never "auto", and <c>PlatformSetting</c> the domain's own setting when it
    /// forces one. The vCPU state in the stream is platform-neutral, so a receiver chooses its platform as for any
    /// domain (<see cref="IncomingVmm.ParseConfig"/>) and says in its log when it differs from the source's.
    /// </summary>
    internal byte[] ConfigJson => JsonSerializer.SerializeToUtf8Bytes(
        _config with
        {
            Name = Name,
            Platform = _domain.Platform.Kind == PlatformKind.Auto ? _config.Platform : _domain.Platform.Kind,
            PlatformSetting = _config.Platform == PlatformKind.Auto ? null : _config.Platform,
            SourcePlatform = null,
        },
        ToolstackJson.Default.DomainConfig);

    internal SandboxDomain Domain => _domain;

    private ControlResponse Save(ControlRequest request)
    {
        if (request.Path is not { Length: > 0 } path) return ControlResponse.Failure("save needs a file");
        if (_remus != null) return ControlResponse.Failure($"domain '{Name}' is protected by Remus; stop protection before saving it");
        lock (_gate)
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
        bool wasRunning = _runCalled && _state == DomainRunState.Running;
        if (!_runCalled) return ControlResponse.Failure($"domain '{Name}' has not started yet; unpause it first");
        _domain.Pause();
        string full = System.IO.Path.GetFullPath(path);
        string temp = full + ".partial";
        SaveResult result;
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                result = DomainSave.Save(_domain, file, ConfigJson, request.Compress ?? true);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            if (wasRunning) _domain.Unpause();
            return ControlResponse.Failure($"cannot save to '{path}': {e.Message}");
        }
        string line = $"saved domain '{Name}' to {full}: {result.Pages} pages, {result.Bytes / 1e6:F1} MB in {result.Elapsed.TotalMilliseconds:F0} ms";
        _log.Write(line);
        if (request.KeepRunning)
        {
            if (wasRunning) _domain.Unpause();
            return new ControlResponse { Ok = true, Domain = Info(), Result = line };
        }
        _log.Write("the domain stops after the save");
        _domain.Kill();
        return new ControlResponse { Ok = true, Result = line };
    }

    private ControlResponse Migrate(ControlRequest request, Action<string> progress)
    {
        if (request.Target is not { } target) return ControlResponse.Failure("migrate needs a target host");
        if (_remus != null) return ControlResponse.Failure($"domain '{Name}' is protected by Remus; stop protection before migrating it");
        if (!_runCalled) return ControlResponse.Failure($"domain '{Name}' has not started yet; unpause it first");
        lock (_gate)
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
        _log.Write($"migrating to {target.Describe()}");
        MigrationChannel channel;
        try
        {
            channel = MigrationChannel.Open(target, _log.Write);
        }
        catch (RemusException e)
        {
            return ControlResponse.Failure(e.Message);
        }
        using (channel)
        {
            var sender = new MigrationSender(_domain, channel.Forward, channel.Back, new MigrationOptions { Compress = request.Compress ?? true });
            var lines = new CopyProgressLines("");
            sender.Progress += p =>
            {
                if (lines.Line(p) is { } line) progress(line);
            };
            try
            {
                var r = sender.Migrate(ConfigJson);
                string line = $"migrated domain '{Name}' to {target.Describe()}: {r.Rounds} rounds, {r.PagesSent} pages, " +
                              $"{r.BytesSent / 1e6:F1} MB in {r.Total.TotalMilliseconds:F0} ms, downtime {r.Downtime.TotalMilliseconds:F1} ms";
                _log.Write(line);
                _domain.Kill(); // it runs on the target now
                return new ControlResponse { Ok = true, Result = line };
            }
            catch (MigrationException e)
            {
                string why = channel.Explain(e.Message, ReceiverGrace);
                _log.Write($"migration failed: {why}");
                return ControlResponse.Failure(sender.HandedOver
                    ? $"migration to {target.Describe()} failed after the hand-over: {why}"
                    : $"migration to {target.Describe()} failed; the domain goes on running here: {why}");
            }
        }
    }

    private ControlResponse Protect(ControlRequest request, Action<string> progress)
    {
        if (_remus is { IsProtected: false }) EndProtection(); // protection was lost: protect again
        if (_remus != null) return ControlResponse.Failure($"domain '{Name}' is already protected (backup: {_protectedTo})");
        if (!_runCalled) return ControlResponse.Failure($"domain '{Name}' has not started yet; unpause it first");
        lock (_gate)
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
        int intervalMs = request.IntervalMs ?? 200;
        bool compress = request.Compress ?? true;
        if (intervalMs < 1) return ControlResponse.Failure("the checkpoint interval must be at least 1 ms");
        int witnessTtlMs = request.WitnessTtlMs ?? Witness.WitnessUrls.DefaultTtlMs;
        if (witnessTtlMs < Witness.WitnessUrls.MinTtlMs)
            return ControlResponse.Failure($"the witness TTL must be at least {Witness.WitnessUrls.MinTtlMs} ms");
        // --witness, else the domain's config key; none: as before (protect warns that a partition can split the domain).
        var witnessUrls = request.Witness is { Length: > 0 } given ? given : _config.Witness is { Count: > 0 } configured ? configured.ToArray() : null;
        Witness.EtcdWitness? witness;
        string keyName = Name;
        try { witness = witnessUrls is null ? null : new Witness.EtcdWitness(witnessUrls, _log.Write); }
        catch (ArgumentException e) { return ControlResponse.Failure(e.Message); }
        var options = new RemusOptions
        {
            Interval = TimeSpan.FromMilliseconds(intervalMs),
            Compress = compress,
            Blackhole = request.Blackhole,
            Timeout = TimeSpan.FromMilliseconds(Math.Max(request.TimeoutMs ?? 2000, 100)),
            // The backup's own timeout governs once its HELLO is read; ours only bounds the wait for that HELLO, 4x
            // as the first ack was bounded before (a command or ssh start with a .NET runtime to load takes seconds).
            HandshakeTimeout = TimeSpan.FromMilliseconds(4L * Math.Max(request.TimeoutMs ?? 2000, 100)),
            Witness = witness,
            WitnessTtl = TimeSpan.FromMilliseconds(witnessTtlMs),
            DomainName = keyName,
            Holder = new WitnessHolder(Environment.MachineName, Environment.ProcessId, "primary"),
        };
        MigrationChannel? channel = null;
        if (!request.Blackhole)
        {
            if (request.Target is not { } t) return ControlResponse.Failure("protect needs a backup host (or -b)");
            try { channel = MigrationChannel.Open(t with { Remus = true }, _log.Write); }
            catch (RemusException e)
            {
                witness?.Dispose();
                return ControlResponse.Failure(e.Message);
            }
        }
        string to = request.Blackhole ? "blackhole (/dev/null)" : request.Target!.Describe();
        var primary = new RemusPrimary(_domain, _commit, channel?.Forward ?? Stream.Null, channel?.Back, options);
        var syncLines = new CopyProgressLines("initial sync ");
        primary.Progress += p =>
        {
            if (syncLines.Line(p) is { } line) progress(line);
        };
        primary.Unprotected += reason =>
        {
            _protectionLost = reason;
            _log.Write($"backup failed; domain {Name} continues unprotected ({reason})");
        };
        primary.Fenced += reason =>
        {
            _protectionLost = reason;
            _fenced = true;
            StopFenced(reason);
        };
        try
        {
            primary.Protect(ConfigJson);
        }
        catch (Exception e) when (e is ProtectionException or IOException or ObjectDisposedException or WitnessException)
        {
            primary.Dispose();
            witness?.Dispose();
            string why = channel?.Explain(e.Message, ReceiverGrace) ?? e.Message;
            channel?.Dispose();
            _log.Write($"protection failed: {why}");
            return ControlResponse.Failure($"cannot protect domain '{Name}': {why}");
        }
        _remus = primary;
        _remusChannel = channel;
        _witness = witness;
        _witnessUrls = witnessUrls is null ? null : string.Join(",", witnessUrls);
        _protectedTo = to;
        _protectionLost = null;
        string line = $"domain '{Name}' is protected: backup {to}, checkpoint every {intervalMs} ms" +
                      (compress ? "" : ", uncompressed") +
                      (request.Blackhole ? "" : $", backup timeout {primary.Timeout.TotalMilliseconds:F0} ms") +
                      (witnessUrls is null ? "" : $", witness {_witnessUrls} (lease TTL {witnessTtlMs} ms)");
        _log.Write(line);
        return new ControlResponse { Ok = true, Domain = Info(), Result = line };
    }

    /// <summary>
    /// The backup took over this domain (TAKEOVER): the primary dropped its held output and paused it; it is killed
    /// here and the VMM ends — two running copies must not outlive the moment the primary learns of the takeover.
    /// </summary>
    private void StopFenced(string reason)
    {
        _log.Write($"domain {Name} was taken over by the backup; stopping here ({reason})");
        ThreadPool.QueueUserWorkItem(_ =>
        {
            try { _domain.Kill(); }
            catch (Exception e) when (e is SandboxException or InvalidOperationException or ObjectDisposedException) { }
        });
    }

    /// <summary>Pauses the domain; a protected one through its primary, so that checkpoints leave it paused.</summary>
    private void PauseDomain()
    {
        if (_remus is { } remus) remus.Pause();
        else _domain.Pause();
    }

    /// <summary>Unpauses the domain; a protected one through its primary (a fenced one never runs again).</summary>
    private void UnpauseDomain()
    {
        if (_remus is { } remus) remus.Unpause();
        else _domain.Unpause();
    }

    /// <summary>Stops the epoch loop (END, then held output released) and closes the backup channel.</summary>
    private void EndProtection()
    {
        var remus = Interlocked.Exchange(ref _remus, null);
        if (remus == null) return;
        remus.Dispose();
        _remusChannel?.Dispose();
        _remusChannel = null;
        Interlocked.Exchange(ref _witness, null)?.Dispose(); // after the primary, which disposes its lease (revoking it)
        _log.Write("protection ended");
    }

    private RemusDomainInfo? RemusInfo()
    {
        var remus = _remus;
        if (remus == null) return null;
        var s = remus.Stats;
        return new RemusDomainInfo
        {
            Protected = remus.IsProtected,
            Backup = _protectedTo ?? "",
            Lost = _protectionLost ?? (remus.IsProtected ? null : remus.EndReason), // EndReason: while it tells the backup
            Witness = _witnessUrls,
            Fenced = _fenced || remus.IsFenced,
            Epochs = s.Epochs,
            PauseP50Ms = Math.Round(s.PauseP50Ms, 3),
            PauseP99Ms = Math.Round(s.PauseP99Ms, 3),
            BytesPerEpoch = Math.Round(s.BytesPerEpoch),
            CompressionRatio = Math.Round(s.CompressionRatio, 2),
            AckLatencyMs = Math.Round(s.AckLatencyMs, 3),
            Net = _domain.NetworkWire == null || s.Net is not { } n ? null : new RemusNetInfo
            {
                FramesHeld = n.FramesHeld,
                BytesHeld = n.BytesHeld,
                FramesReleased = n.FramesReleased,
                BytesReleased = n.BytesReleased,
                FramesDropped = n.FramesDropped,
                LatencyP50Ms = Math.Round(n.LatencyP50Ms, 3),
                LatencyP99Ms = Math.Round(n.LatencyP99Ms, 3),
            },
        };
    }

    // ---- incoming domains (restore, migrate-receive) ----

    /// <summary>The domain takes its final name (migration's `NAME--incoming` becomes `NAME`).</summary>
    internal void TakeName(string name, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                var response = Rename(name);
                if (response.Ok) return;
                throw new RemusException(response.Error ?? $"cannot rename the domain to '{name}'");
            }
            catch (RemusException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50); // the previous holder of the name (the source VMM) is still going away
            }
        }
    }

    /// <summary>Lets an incoming (paused, never run) domain start.</summary>
    internal void Resume() => Unpause();

    /// <summary>Writes to the console directly (a Remus backup re-emitting the last epoch's output at failover).</summary>
    internal IConsole RawConsole => _console;

    /// <summary>Gives up an incoming domain that never ran: unregister, release everything.</summary>
    internal void Abandon(string why)
    {
        _log.Write($"incoming domain abandoned: {why}");
        _server?.StopAccepting();
        _registry.Forget(Id);
        Dispose();
        RemoveStaging(_config.VolumeSpecs, _log.Write);
    }
}
