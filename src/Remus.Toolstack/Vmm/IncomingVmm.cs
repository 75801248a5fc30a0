using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Toolstack.Config;
using Remus.Toolstack.Console;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Registry;

namespace Remus.Toolstack.Vmm;

/// <summary>How `remus migrate-receive` runs.</summary>
public sealed record ReceiveOptions
{
    /// <summary>-r: be the Remus backup of a protected domain.</summary>
    public bool Remus { get; init; }
    /// <summary>-F: stay in the foreground once the domain runs here.</summary>
    public bool Foreground { get; init; }
    /// <summary>-p: leave the domain paused once it arrived.</summary>
    public bool Paused { get; init; }
    /// <summary>--tcp-listen ADDR:PORT: take the stream from one TCP connection instead of stdin/stdout.</summary>
    public string? TcpListen { get; init; }
    /// <summary>
    /// --timeout: (-r) T, how long the reader may wait for the primary's bytes before it is declared lost. Sent to the
    /// primary in the handshake: it heartbeats every T/4 and holds each epoch's output lease for T − max(10%, 20 ms).
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>--debug: tell more on stderr.</summary>
    public bool Debug { get; init; }
    /// <summary>--tcp-listen: how the accepted connection is protected (TLS, PSK, or --insecure); required with TcpListen.</summary>
    public Security.ChannelSecurity? Security { get; init; }
    /// <summary>What the incoming stream's configuration may ask for (checked before anything is created).</summary>
    public Security.ReceivePolicy Policy { get; init; } = new();
    /// <summary>
    /// --volumes DIR: keep the domain's volumes at DIR/&lt;target without the leading slash&gt; (absolute); null: at
    /// the sender's host paths.
    /// </summary>
    public string? VolumesDirectory { get; init; }
    /// <summary>
    /// --witness URL[,URL...]: (-r) take over only after acquiring the domain's key at this etcd witness (issue 12);
    /// null: no witness (take over as soon as the primary is lost).
    /// </summary>
    public IReadOnlyList<string>? Witness { get; init; }
    /// <summary>--witness-ttl: the TTL of the lease the backup takes when it takes over.</summary>
    public TimeSpan WitnessTtl { get; init; } = TimeSpan.FromMilliseconds(global::Remus.Toolstack.Witness.WitnessUrls.DefaultTtlMs);
}

/// <summary>
/// Domains that arrive as a checkpoint stream: restore from a save file, and `migrate-receive` — where this process
/// becomes the VMM of the arriving domain. The domain is registered as `NAME--incoming` (paused) while it arrives,
/// takes its name when complete (or, as a Remus backup, at failover), and nothing is left if the stream fails.
/// </summary>
public static class IncomingVmm
{
    public const string IncomingSuffix = "--incoming";

    /// <summary>How long a domain arriving here waits for its tap's name (held by its previous VMM on the same host).</summary>
    private static readonly TimeSpan NetworkPatience = TimeSpan.FromSeconds(15);

    /// <summary>The domain configuration stored in a save file's header (validates the header).</summary>
    public static DomainConfig ReadSavedConfig(string file)
    {
        try
        {
            using var stream = File.OpenRead(file);
            return ParseConfig(new CheckpointReader(stream).ReadHeader().DomainConfig);
        }
        catch (FileNotFoundException) { throw new RemusException($"{file}: no such file"); }
        catch (CheckpointStreamException e) { throw new RemusException($"{file}: {e.Message}"); }
        catch (IOException e) { throw new RemusException($"{file}: {e.Message}"); }
    }

    /// <summary>
    /// The domain configuration of a checkpoint stream, as the receiver builds the domain from it: the stream's
    /// <c>Platform</c> (where the checkpoint was taken) becomes <see cref="DomainConfig.SourcePlatform"/>, and the
    /// domain's platform is its own forced setting if the stream carries one, else auto (REMUS_PLATFORM, else the
    /// measured choice). Streams written before checkpoints were platform-neutral carry no setting: auto.
    /// </summary>
    public static DomainConfig ParseConfig(ReadOnlyMemory<byte> json)
    {
        try
        {
            var config = JsonSerializer.Deserialize(json.Span, ToolstackJson.Default.DomainConfig)
                         ?? throw new RemusException("the stream carries no domain configuration");
            if (DomainConfigShape.Problem(config) is { } problem)
                throw new RemusException($"the stream's domain configuration is invalid: {problem}");
            return config with
            {
                SourcePlatform = config.Platform == PlatformKind.Auto ? null : config.Platform,
                Platform = config.PlatformSetting ?? PlatformKind.Auto,
                PlatformSetting = null,
            };
        }
        catch (JsonException e)
        {
            throw new RemusException($"the stream's domain configuration is invalid: {e.Message}");
        }
    }

    /// <summary>A domain factory that builds the domain from a save file.</summary>
    public static Func<DomainSpec, IConsole, SandboxDomain> RestoreFrom(string file) => (spec, console) =>
    {
        bool built = false;
        try
        {
            SandboxDomain domain;
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
                domain = DomainSave.Restore(stream, _ => SandboxDomain.CreateIncoming(spec, console));
            try
            {
                // Its tap again, in the same place (the saved domain's VMM may still be letting go of the name).
                domain.ConnectNetwork(NetworkPatience, announce: true);
            }
            catch
            {
                domain.Dispose();
                throw;
            }
            built = true;
            return domain;
        }
        catch (CheckpointStreamException e) { throw new RemusException($"{file}: {e.Message}"); }
        catch (IOException e) { throw new RemusException($"{file}: {e.Message}"); }
        finally
        {
            if (!built) VmmHost.RemoveStaging(spec.Volumes); // a failed restore keeps nothing
        }
    };

    /// <summary>Gives up an arriving domain: its VMM if it got one, else whatever staging copies were made.</summary>
    private static void Abandon(VmmHost? vmm, DomainConfig? config, string why)
    {
        if (vmm != null) vmm.Abandon(why);
        else if (config != null) VmmHost.RemoveStaging(config.VolumeSpecs);
    }

    /// <summary>`remus migrate-receive [-r]`: receives a domain and becomes its VMM. Returns the exit status.</summary>
    public static int Receive(ReceiveOptions options, RunDirectory runDirectory, Action<string> say)
    {
        if (!options.Foreground) HostOs.setsid(); // outlive the ssh session that started us
        Stream forward, back;
        TcpClient? tcp = null;
        if (options.TcpListen is { } endpoint)
        {
            var security = options.Security ?? throw new RemusException(
                $"--tcp-listen {endpoint} needs a protection: --tls-cert/--tls-key/--tls-ca, --psk-file or --insecure");
            var (host, port) = Migration.MigrationChannel.ParseEndpoint(endpoint);
            var listener = new TcpListener(IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host)[0], port);
            try
            {
                listener.Start();
            }
            catch (SocketException e)
            {
                throw new RemusException($"cannot listen on {endpoint}: {e.Message}");
            }
            say($"waiting for a {(options.Remus ? "Remus primary" : "migration")} on {endpoint}");
            tcp = listener.AcceptTcpClient();
            listener.Stop();
            tcp.NoDelay = true;
            string peer = tcp.Client.RemoteEndPoint?.ToString() ?? endpoint;
            try
            {
                // The peer proves itself before any record is read (nothing is created for one that cannot).
                forward = back = Migration.MigrationChannel.Protect(tcp.GetStream(), security, peer, accept: true);
            }
            catch (Exception e) when (e is RemusException or IOException or ObjectDisposedException)
            {
                tcp.Dispose();
                // The channel's messages name the peer already.
                throw new RemusException($"refused the connection: {e.Message}; nothing was created");
            }
            if (security.Mode == Security.ChannelMode.Tls) say($"{peer} authenticated: TLS, its certificate chains to {security.CaFile}");
            else if (security.Mode == Security.ChannelMode.Psk) say($"{peer} authenticated: it proved the pre-shared key {security.PskFile}");
        }
        else
        {
            var stdin = new FileStream(new SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
            // A Remus backup must be able to abandon a read that waits too long (its silence detector), and closing
            // fd 0 does not wake a thread blocked reading it: read it on a thread of its own instead.
            forward = options.Remus ? new PumpedInput(stdin) : stdin;
            back = new FdWriteStream(1);
        }

        // An epoch carries one VCPU_STATE per vCPU: no more than the policy allows are read.
        var readerOptions = options.Policy.ReaderOptions();
        VmmHost? vmm = null;
        string? name = null;
        DomainConfig? arriving = null;
        Action? afterStart = null;
        SandboxDomain Build(ReadOnlyMemory<byte> json)
        {
            var config = ParseConfig(json).WithVolumesUnder(options.VolumesDirectory);
            // The receiver's policy, before anything exists (no VMM, no registry entry, no staging copy, no file
            // opened): one line "refused: ...; nothing was created". Volumes placed by --volumes DIR must lie under DIR.
            options.Policy.Check(config, options.VolumesDirectory);
            name = config.Name;
            arriving = config;
            vmm = VmmHost.Start(config with { Name = config.Name + IncomingSuffix }, runDirectory,
                new VmmOptions { StartPaused = true }, SandboxDomain.CreateIncoming);
            return vmm.Domain;
        }

        try
        {
            if (!options.Remus)
            {
                var receiver = new MigrationReceiver(forward, back, readerOptions);
                try
                {
                    receiver.Receive(Build);
                }
                catch (Security.PolicyViolationException)
                {
                    throw; // one line already, and nothing was made
                }
                catch (Exception e) when (e is CheckpointStreamException or IOException or RemusException or SandboxException
                                              or ObjectDisposedException)
                {
                    Abandon(vmm, arriving, e.Message);
                    throw new RemusException($"migration failed: {e.Message}; nothing was kept here");
                }
                // Confirm as soon as the vCPU runs (the downtime ends there), then take the name, waiting for the
                // source to let go of it when both use one run directory (a migration within one host).
                var arrived = vmm!;
                afterStart = () =>
                {
                    receiver.ConfirmRunning();
                    // The volumes are moved into place once the source has let go of them (within one host without
                    // --volumes it holds the same directories until it learns the domain runs here); the domain
                    // runs on its staging copies meanwhile (open by descriptor, they stay open across the move).
                    try
                    {
                        arrived.CommitVolumes(VmmHost.VolumePatience, say);
                    }
                    catch (RemusException e)
                    {
                        say($"domain '{name}': {e.Message}; it keeps running on its copies at " +
                            string.Join(", ", arriving!.Volumes.Select(v => Sandbox.Volumes.VolumeStaging.StagingPath(v.Source))));
                    }
                    arrived.TakeName(name!, TimeSpan.FromSeconds(15));
                    say($"domain '{name}' arrived and {(options.Paused ? "is paused" : "runs")} here (id {arrived.Id})");
                };
                // The tap again, in the same place, then a gratuitous ARP: in the background, since on the same host
                // the source lets go of the name only once it learns the domain runs here (its frames wait meanwhile).
                arrived.Domain.ConnectNetworkInBackground(NetworkPatience, announce: true);
                if (options.Paused)
                {
                    afterStart();
                    afterStart = null;
                }
                else arrived.Resume();
            }
            else
            {
                // The domain's name arrives with the stream (Build): the engine names the witness key from the stream's
                // config when DomainName is empty. Not disposed here: after a takeover the lease this copy took lives
                // as long as this VMM (the process), so the key stays held while the domain runs here.
                var witness = options.Witness is { Count: > 0 } urls
                    ? new Witness.ArrivingDomainWitness(new Witness.EtcdWitness(urls, say), () => name)
                    : null;
                var backup = new RemusBackup(forward, back, new RemusOptions
                {
                    Reader = readerOptions,
                    Timeout = options.Timeout,
                    Witness = witness,
                    WitnessTtl = options.WitnessTtl,
                    // etcd grants leases in whole seconds and expires them on its own ~500 ms sweep: a dead primary's
                    // key can outlive the TTL asked for by up to 1.5 s, so the backup tries at least that long more.
                    WitnessPatience = 3 * Witness.EtcdKeys.Granted(options.WitnessTtl) + options.Timeout + TimeSpan.FromMilliseconds(500),
                    Holder = new Remus.Checkpoint.Witness.WitnessHolder(Environment.MachineName, Environment.ProcessId, "backup"),
                }, m => { if (options.Debug) say(m); });
                BackupOutcome outcome;
                try
                {
                    outcome = backup.Watch(Build);
                }
                catch (Exception e) when (e is RemusException or ProtectionException or CheckpointStreamException
                                              or IOException or SandboxException or ObjectDisposedException
                                              or Remus.Checkpoint.Witness.WitnessException)
                {
                    Abandon(vmm, arriving, e.Message);
                    throw new RemusException(e.Message);
                }
                switch (outcome)
                {
                    case BackupOutcome.Ended:
                        Abandon(vmm, arriving, "the primary ended protection");
                        say($"the primary ended protection of domain '{name}'; nothing to take over");
                        return 0;
                    case BackupOutcome.Rejected:
                        Abandon(vmm, arriving, backup.LossReason ?? "corrupt checkpoint");
                        throw new RemusException($"{backup.LossReason}; protection of domain '{name}' ended without a takeover");
                    case BackupOutcome.Declined:
                        // The primary (or another copy) still holds the witness key: it is alive somewhere, so this
                        // copy must never run (the engine discarded it and says who holds the key).
                        Abandon(vmm, arriving, backup.LossReason ?? "the witness key is held by another copy");
                        say($"{backup.LossReason}; no takeover of domain '{name}'");
                        return 0;
                    case BackupOutcome.Released:
                        // The primary gave up on us and goes on unprotected: our copy must never run.
                        Abandon(vmm, arriving, backup.LossReason ?? "released by the primary");
                        say($"{backup.LossReason}; discarded checkpoint {backup.LastCheckpoint?.ToString() ?? "(none)"} of domain '{name}', no takeover");
                        return 0;
                    case BackupOutcome.Exited:
                    {
                        // The program had exited on the primary (its EXIT epoch was acked here) and the primary died
                        // before END: re-emit its last output, which it may not have released, and end as it ended.
                        // Its volumes as the program left them (the EXIT epoch's last operations applied here) are
                        // kept too: the primary's disk may be gone with it.
                        int status = backup.ExitStatus ?? 0;
                        try
                        {
                            vmm!.CommitVolumes(VmmHost.VolumePatience, say);
                        }
                        catch (RemusException e)
                        {
                            say($"domain '{name}': {e.Message}");
                        }
                        backup.ReplayLastOutput(vmm!.RawConsole);
                        say($"Remus failover for domain {name}: the program had exited with status {status} on the primary " +
                            $"({backup.LossReason}); its last output is re-emitted, nothing runs here");
                        vmm.Abandon($"the program had exited with status {status} on the primary");
                        return status;
                    }
                }
                // The backup's copies become the volumes before anything of the domain shows (its last output
                // included): if they cannot, the domain must not run here.
                try
                {
                    vmm!.CommitVolumes(VmmHost.VolumePatience, say);
                }
                catch (RemusException e)
                {
                    vmm!.Abandon(e.Message);
                    throw new RemusException($"Remus failover for domain {name} failed: {e.Message}; nothing runs here");
                }
                // The tap again (the dead primary's goes with its process), then the last epoch's output re-emitted:
                // console and frames (kept until the tap exists) in their order; a gratuitous ARP once it runs.
                vmm!.Domain.ConnectNetworkInBackground(NetworkPatience, announce: true);
                backup.ReplayLastOutput(vmm.RawConsole, vmm.Domain.NetworkWire);
                vmm.TakeName(name!, TimeSpan.FromSeconds(15));
                say($"Remus failover for domain {name} (checkpoint {backup.LastCheckpoint}; {backup.LossReason})");
                if (!options.Paused) vmm.Resume();
                var tookOver = vmm;
                afterStart = () => { if (!options.Foreground) VmmProcess.Detach(tookOver.LogPath); };
            }
        }
        finally
        {
            if (vmm == null) tcp?.Dispose();
        }

        var incoming = vmm!;
        var started = afterStart;
        using (incoming)
        {
            if (started == null && !options.Foreground) VmmProcess.Detach(incoming.LogPath);
            using (incoming.HandleTerminationSignals())
                return incoming.RunToCompletion(started == null ? null : () =>
                {
                    started!();
                    tcp?.Dispose();
                    if (!options.Foreground && !options.Remus) VmmProcess.Detach(incoming.LogPath);
                });
        }
    }
}

/// <summary>
/// A stream read ahead by a thread of its own (up to 4 MiB), so that a reader blocked on it is released by
/// <see cref="Dispose(bool)"/> even when the source (a pipe on fd 0) cannot be interrupted.
/// </summary>
internal sealed class PumpedInput : ReadOnlyStream
{
    private readonly System.Collections.Concurrent.BlockingCollection<byte[]> _chunks = new(boundedCapacity: 64);
    private readonly CancellationTokenSource _closed = new();
    private byte[] _current = [];
    private int _offset;
    private Exception? _error;

    public PumpedInput(Stream source)
    {
        new Thread(() =>
        {
            try
            {
                while (true)
                {
                    var buffer = new byte[64 << 10];
                    int n = source.Read(buffer);
                    if (n <= 0) break;
                    _chunks.Add(buffer[..n], _closed.Token);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { _error = e; }
            finally
            {
                try { _chunks.CompleteAdding(); } catch (ObjectDisposedException) { }
            }
        }) { IsBackground = true, Name = "stdin-pump" }.Start();
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_offset == _current.Length)
        {
            try
            {
                if (!_chunks.TryTake(out var next, Timeout.Infinite, _closed.Token))
                    return _error is null ? 0 : throw new IOException(_error.Message, _error);
                (_current, _offset) = (next, 0);
            }
            catch (OperationCanceledException)
            {
                throw new ObjectDisposedException(nameof(PumpedInput), "the input was closed");
            }
        }
        int count = Math.Min(buffer.Length, _current.Length - _offset);
        _current.AsSpan(_offset, count).CopyTo(buffer);
        _offset += count;
        return count;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _closed.Cancel();
        base.Dispose(disposing);
    }

}
