using System.Runtime.InteropServices;
using Remus.Toolstack.Config;
using Remus.Toolstack.Console;
using Remus.Toolstack.Control;
using Remus.Toolstack.Registry;
using Remus.Toolstack.Vmm;

namespace Remus.Toolstack;

/// <summary>
/// The toolstack's public API (what libxl is to xl): create, list, pause, unpause, rename, destroy domains and attach
/// to their consoles. Every running domain is its own VMM process, found through the run directory; the VMM owns the
/// domain's state and this class only asks it. User errors are <see cref="RemusException"/>s (and
/// <see cref="Remus.Sandbox.SandboxException"/>s from loading a program) with one-line messages.
/// </summary>
public sealed class DomainManager(RunDirectory runDirectory)
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DestroyTimeout = TimeSpan.FromSeconds(30);

    private readonly DomainRegistry _registry = new(runDirectory);

    public RunDirectory RunDirectory { get; } = runDirectory;

    /// <summary>How to start a detached VMM (default: this very program, hidden verb <c>__vmm</c>).</summary>
    public VmmCommand? VmmCommand { get; init; }

    /// <summary>The manager of the run directory named by <c>$REMUS_RUN_DIR</c> (or its default).</summary>
    public static DomainManager FromEnvironment() => new(RunDirectory.FromEnvironment());

    /// <summary>The running domains, by id, as their VMMs describe them. Stale entries are removed silently.</summary>
    public IReadOnlyList<DomainInfo> List()
    {
        var domains = new List<DomainInfo>();
        foreach (var record in _registry.Records())
        {
            var info = TryInfo(record);
            if (info is not null) domains.Add(info);
        }
        return domains;
    }

    /// <summary>One domain, by name or id.</summary>
    public DomainInfo Get(string domain) =>
        Call(domain, new ControlRequest { Op = ControlOps.Info }, RequestTimeout).Domain!;

    /// <summary>
    /// Starts a domain in its own detached VMM process and returns once the VMM has loaded the program and
    /// registered the domain (or throws the VMM's error; then nothing is left behind).
    /// </summary>
    public DomainInfo Create(DomainConfig config, bool paused = false)
    {
        RefuseNameInUse(config.Name);
        VolumeConfig.PrepareSources(config.Volumes);
        RunDirectory.EnsureExists();
        var report = VmmLauncher.Launch(config, paused, RunDirectory, VmmCommand ?? Vmm.VmmCommand.Current());
        try
        {
            return Get(report.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (RemusException)
        {
            // It is registered, but gone already (a program that exits at once): report what we know.
            return new DomainInfo
            {
                Name = report.Name ?? config.Name, Id = report.Id, Pid = report.Pid, State = DomainRunState.Exited,
                Memory = config.MemoryMiB, Program = config.Program,
            };
        }
    }

    /// <summary>
    /// Runs a domain's VMM in this process (create -F): registered like any other (list, pause, console work), its
    /// console is also our stdin/stdout/stderr. Returns the program's exit status when it exits.
    /// <paramref name="started"/> is told the domain once it is registered.
    /// </summary>
    public int CreateForeground(DomainConfig config, bool paused = false, Action<DomainInfo>? started = null)
    {
        RefuseNameInUse(config.Name);
        VolumeConfig.PrepareSources(config.Volumes);
        using var host = VmmHost.Start(config, RunDirectory, new VmmOptions { StartPaused = paused, Foreground = true });
        started?.Invoke(host.Info());
        using var stopInput = new CancellationTokenSource();
        var input = new Thread(() => ForwardStdin(host.ConsoleInput, stopInput.Token)) { IsBackground = true, Name = "stdin" };
        input.Start();
        using (host.HandleTerminationSignals())
        {
            var status = host.RunToCompletion();
            stopInput.Cancel();
            // Ended by Ctrl-C (or SIGTERM, SIGHUP): report it as a shell would, 128 + the signal's number.
            return host.TerminatedBy switch
            {
                PosixSignal.SIGINT => 130,
                PosixSignal.SIGHUP => 129,
                PosixSignal.SIGTERM => 143,
                _ => status,
            };
        }
    }

    /// <summary>Saves a domain to <paramref name="file"/> (save -c: it goes on running; else it stops). Returns the result line.</summary>
    public string Save(string domain, string file, bool keepRunning, bool compress = true) =>
        Call(domain, new ControlRequest { Op = ControlOps.Save, Path = Path.GetFullPath(file), KeepRunning = keepRunning, Compress = compress },
            Timeout.InfiniteTimeSpan).Result ?? "saved";

    /// <summary>Live-migrates a domain; progress lines go to <paramref name="progress"/>. Returns the result line.</summary>
    public string Migrate(string domain, Migration.MigrationTarget target, bool compress = true, Action<string>? progress = null) =>
        Call(domain, new ControlRequest { Op = ControlOps.Migrate, Target = target, Compress = compress }, Timeout.InfiniteTimeSpan, progress).Result ?? "migrated";

    /// <summary>
    /// Protects a domain with Remus; returns once it is protected: the result line, and the witness URLs it uses (from
    /// <paramref name="witness"/>, else the domain's config key `witness`; null: none).
    /// </summary>
    public (string Line, string? Witness) Protect(string domain, Migration.MigrationTarget? target, int intervalMs, bool blackhole, bool compress, int timeoutMs,
        Action<string>? progress = null, IReadOnlyList<string>? witness = null, int? witnessTtlMs = null)
    {
        var response = Call(domain, new ControlRequest
        {
            Op = ControlOps.Protect, Target = target, IntervalMs = intervalMs, Blackhole = blackhole, Compress = compress, TimeoutMs = timeoutMs,
            Witness = witness is { Count: > 0 } ? witness.ToArray() : null, WitnessTtlMs = witnessTtlMs,
        }, Timeout.InfiniteTimeSpan, progress);
        return (response.Result ?? "protected", response.Domain?.Remus?.Witness);
    }

    /// <summary>
    /// Restores a saved domain in its own detached VMM (like <see cref="Create"/>). Its volumes' content comes from
    /// the file: built in staging directories and moved into place at their host paths — the saved domain's, or
    /// <paramref name="volumesDirectory"/>/&lt;target&gt; (restore --volumes DIR).
    /// </summary>
    public DomainInfo Restore(string file, bool paused = false, string? volumesDirectory = null, Action<string>? say = null)
    {
        var config = Vmm.IncomingVmm.ReadSavedConfig(file)
            .WithVolumesUnder(volumesDirectory is null ? null : Path.GetFullPath(volumesDirectory));
        RefuseNameInUse(config.Name);
        RunDirectory.EnsureExists();
        var report = VmmLauncher.Launch(config, paused, RunDirectory, VmmCommand ?? Vmm.VmmCommand.Current(), Path.GetFullPath(file));
        foreach (var note in report.Notes ?? []) say?.Invoke(note);
        return Get(report.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public DomainInfo Pause(string domain) => Call(domain, new ControlRequest { Op = ControlOps.Pause }, RequestTimeout).Domain!;

    public DomainInfo Unpause(string domain) => Call(domain, new ControlRequest { Op = ControlOps.Unpause }, RequestTimeout).Domain!;

    public DomainInfo Rename(string domain, string newName)
    {
        DomainName.Validate(newName);
        return Call(domain, new ControlRequest { Op = ControlOps.Rename, Name = newName }, RequestTimeout).Domain!;
    }

    /// <summary>Kills the program and waits until its VMM has removed the domain; returns the exit status.</summary>
    public int Destroy(string domain)
    {
        var record = _registry.Resolve(domain);
        try
        {
            var response = Call(record, domain, new ControlRequest { Op = ControlOps.Destroy }, DestroyTimeout);
            return response.ExitStatus ?? 137;
        }
        catch (VmmGoneException)
        {
            // It went away while we asked (it exited, or gave up waiting for a stuck program): it is gone either way.
            _registry.Forget(record.Id);
            return 137;
        }
    }

    /// <summary>Attaches our terminal to a domain's console until its program exits or the user detaches.</summary>
    public ConsoleOutcome AttachConsole(string domain)
    {
        var record = _registry.Resolve(domain);
        using var client = Connect(record, domain);
        return ConsoleAttacher.Attach(client, domain);
    }

    private void RefuseNameInUse(string name)
    {
        DomainName.Validate(name);
        if (_registry.LiveRecords().FirstOrDefault(r => r.Name == name) is { } existing)
            throw new RemusException($"domain name '{name}' is already in use (domain {existing.Id})");
    }

    private DomainInfo? TryInfo(DomainRecord record)
    {
        try
        {
            using var client = ControlClient.TryConnect(RunDirectory.SocketPath(record.Id), RequestTimeout);
            if (client is null)
            {
                _registry.Forget(record.Id);
                return null;
            }
            var response = client.Call(new ControlRequest { Op = ControlOps.Info }, RequestTimeout);
            return response.Ok ? response.Domain : null;
        }
        catch (VmmGoneException)
        {
            return null; // it exited while we asked
        }
        catch (RemusException)
        {
            return new DomainInfo
            {
                Name = record.Name, Id = record.Id, Pid = record.Pid, State = DomainRunState.Unknown,
                Memory = record.Memory, Program = record.Program, Created = record.Created,
            };
        }
    }

    private ControlResponse Call(string domain, ControlRequest request, TimeSpan timeout, Action<string>? progress = null) =>
        Call(_registry.Resolve(domain), domain, request, timeout, progress);

    private ControlResponse Call(DomainRecord record, string domain, ControlRequest request, TimeSpan timeout, Action<string>? progress = null)
    {
        using var client = Connect(record, domain);
        ControlResponse response;
        try
        {
            response = client.Call(request, timeout, progress);
        }
        catch (VmmGoneException) when (request.Op != ControlOps.Destroy)
        {
            throw new UnknownDomainException(domain);
        }
        if (!response.Ok) throw new RemusException(response.Error ?? $"{request.Op} failed");
        return response;
    }

    private ControlClient Connect(DomainRecord record, string domain)
    {
        var client = ControlClient.TryConnect(RunDirectory.SocketPath(record.Id), RequestTimeout);
        if (client is not null) return client;
        _registry.Forget(record.Id);
        throw new UnknownDomainException(domain);
    }

    private static void ForwardStdin(ConsoleInput input, CancellationToken stop)
    {
        using var stdin = new CancellableFdReader(0);
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = stdin.Read(buffer, stop);
                if (n == 0) break;
                input.PostAsync(buffer[..n], stop).AsTask().GetAwaiter().GetResult();
            }
            input.Complete();
        }
        catch (OperationCanceledException)
        {
        }
    }
}
