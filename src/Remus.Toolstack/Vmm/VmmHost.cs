using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Config;
using Remus.Toolstack.Console;
using Remus.Toolstack.Control;
using Remus.Toolstack.Registry;

namespace Remus.Toolstack.Vmm;

/// <summary>How a VMM starts its domain.</summary>
public sealed record VmmOptions
{
    /// <summary>Load the program but do not run it until unpaused (create -p).</summary>
    public bool StartPaused { get; init; }

    /// <summary>The VMM runs in the foreground (create -F): the console is also our own stdin/stdout/stderr.</summary>
    public bool Foreground { get; init; }
}

/// <summary>
/// A VMM: hosts one <see cref="SandboxDomain"/>, its console and its control socket, and is the single owner of the
/// domain's state (name, id, running/paused/exited). Control requests arrive on pool threads; the domain itself is
/// created and run on the thread that calls <see cref="Start"/> and <see cref="RunToCompletion"/> (a vCPU is bound to
/// the thread that made it). When the program exits the VMM removes its registry entry and socket, tells attached
/// consoles the exit status and records it in its log; then the process ends (like xl without on_poweroff=preserve).
/// </summary>
public sealed partial class VmmHost : IDisposable
{
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(3);

    private readonly object _gate = new();
    private readonly SemaphoreSlim _ops = new(1, 1);
    private readonly ManualResetEventSlim _startGate = new();
    private readonly ManualResetEventSlim _finished = new();
    private readonly VmmOptions _options;
    private readonly DomainRegistry _registry;
    private readonly ConsoleHub _console;
    private readonly OutputCommitConsole _commit;
    private readonly DomainConfig _config;
    private readonly VmmLog _log;
    private readonly SandboxDomain _domain;
    private readonly int _ownerThread;
    private ControlServer? _server;
    private DomainRecord _record;
    private DomainRunState _state;
    private bool _runCalled, _destroyRequested;
    private int? _exitStatus;

    private VmmHost(VmmOptions options, DomainRegistry registry, ConsoleHub console, OutputCommitConsole commit,
        DomainConfig config, VmmLog log, SandboxDomain domain, DomainRecord record)
    {
        _options = options;
        _commit = commit;
        _config = config;
        _registry = registry;
        _console = console;
        _log = log;
        _domain = domain;
        _record = record;
        _ownerThread = Environment.CurrentManagedThreadId;
        _state = options.StartPaused ? DomainRunState.Paused : DomainRunState.Running;
        if (!options.StartPaused) _startGate.Set();
    }

    public int Id => _record.Id;

    public string Name => _record.Name;

    /// <summary>The VMM log file.</summary>
    public string LogPath => _registry.RunDirectory.LogPath(Id);

    internal ConsoleInput ConsoleInput => _console.Input;

    /// <summary>
    /// Validates and loads the program, then registers the domain (unique name, new id, control socket). Throws
    /// <see cref="SandboxException"/> or <see cref="RemusException"/> with a one-line message; on failure nothing is
    /// left behind (no socket, no registry entry, no console_log that this call created).
    /// </summary>
    public static VmmHost Start(DomainConfig config, RunDirectory runDirectory, VmmOptions options) =>
        Start(config, runDirectory, options, SandboxDomain.Create);

    /// <summary>
    /// As <see cref="Start(DomainConfig, RunDirectory, VmmOptions)"/>, with the domain built by
    /// <paramref name="build"/> (restore and migration build it from a checkpoint stream instead of the program).
    /// </summary>
    public static VmmHost Start(DomainConfig config, RunDirectory runDirectory, VmmOptions options,
        Func<DomainSpec, IConsole, SandboxDomain> build)
    {
        DomainName.Validate(config.Name);
        runDirectory.EnsureExists();
        var registry = new DomainRegistry(runDirectory);
        var log = new VmmLog();
        var console = new ConsoleHub(log.Write) { EchoToStdio = options.Foreground };
        // Output commit while Remus protects the domain, holding at most held_output_mib (a write past it waits).
        var commit = new OutputCommitConsole(console) { HeldLimit = config.HeldOutputBytes };
        SandboxDomain? domain = null;
        (DomainRecord Record, Socket Listener)? registered = null;
        try
        {
            if (config.ConsoleLog is { } consoleLog) console.OpenLog(consoleLog);
            domain = build(config.ToSpec(), commit);
            domain.Log = message => log.Write($"sandbox: {message}"); // unsupported syscalls, faults: not the console
            if (domain.NetworkWire is { } wire)
            {
                // The network's output goes through output commit as the console's does: held while protected.
                commit.Wire = wire;
                domain.RouteOutbound(commit.Frames);
            }
            registered = registry.Register(config.Name, config.MemoryMiB, config.Program, Listen);
            var (record, listener) = registered.Value;
            log.Open(runDirectory.LogPath(record.Id));
            log.Write($"domain '{record.Name}' (id {record.Id}) created by VMM pid {record.Pid}: program {config.Program}, " +
                      $"{config.MemoryMiB} MiB{(options.StartPaused ? ", paused" : "")}{(options.Foreground ? ", foreground" : "")}");
            log.Write($"platform: {domain.Platform}");
            if (config.Network is { } net)
                log.Write($"network: {net.Address} mac {net.Mac} on tap {net.Tap}{(net.Netns is { } ns ? $" in netns {ns}" : "")}" +
                          (net.HostAddress is { } hostSide ? $", host side {hostSide}" : "") + (net.Bridge is { } br ? $", bridge {br}" : "") +
                          (domain.TapName != null ? "" : " (the tap is created when the domain takes over here)"));
            if (config.SourcePlatform is { } source && source != PlatformKind.Auto && source != domain.Platform.Kind)
                log.Write($"the checkpoint was taken on {PlatformSelection.NameOf(source)}; the domain goes on here on " +
                          $"{domain.Platform.Name} (checkpoints are platform-neutral)");
            var host = new VmmHost(options, registry, console, commit, config, log, domain, record);
            domain.Stopped += host.ProgramStopped;
            host._server = new ControlServer(listener, host);
            host._server.Start();
            return host;
        }
        catch
        {
            if (registered is { } done)
            {
                done.Listener.Dispose();
                registry.Forget(done.Record.Id);
            }
            domain?.Dispose();
            console.Dispose();
            log.Dispose();
            if (console.CreatedLog && config.ConsoleLog is { } created && new FileInfo(created) is { Exists: true, Length: 0 })
                File.Delete(created);
            throw;
        }
    }

    private static Socket Listen(string path)
    {
        if (Encoding.UTF8.GetByteCount(path) > 107)
            throw new RemusException($"control socket path '{path}' is too long for a Unix socket; use a shorter {RunDirectory.EnvironmentVariable}");
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (File.Exists(path)) File.Delete(path);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(64);
            return socket;
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            socket.Dispose();
            throw new RemusException($"cannot create control socket '{path}': {e.Message}");
        }
    }

    /// <summary>
    /// Runs the program until it exits (on the thread that called <see cref="Start"/>), waiting first for an
    /// unpause if the domain started paused; then retires the domain. Returns the program's exit status.
    /// </summary>
    public int RunToCompletion(Action? running = null)
    {
        if (Environment.CurrentManagedThreadId != _ownerThread)
            throw new InvalidOperationException("RunToCompletion must run on the thread that started the VMM");
        // Wait until the domain is to run (create -p: until unpaused) or is destroyed before it ever ran.
        bool run;
        while (true)
        {
            _startGate.Wait();
            lock (_gate)
            {
                if (_destroyRequested) { run = false; break; }
                if (_state == DomainRunState.Running) { _runCalled = true; run = true; break; }
                _startGate.Reset();
            }
        }
        int status;
        if (!run) status = 137;
        else
        {
            try
            {
                if (running != null)
                {
                    // Tell the caller once the vCPU really runs (a migration's downtime ends there).
                    new Thread(() =>
                    {
                        while (_domain.State is DomainState.Created) Thread.Sleep(1);
                        try { running(); }
                        catch (Exception e) { _log.Write($"after the start: {e.Message}"); }
                    }) { IsBackground = true, Name = "started" }.Start();
                }
                status = _domain.Run();
            }
            catch (Exception e)
            {
                _log.Write($"the sandbox failed: {e}");
                status = 134;
            }
        }
        Retire(status);
        return status;
    }

    /// <summary>Destroys the domain when the VMM is asked to terminate (SIGTERM; with -F also SIGINT, SIGHUP).</summary>
    public IDisposable HandleTerminationSignals()
    {
        var signals = _options.Foreground
            ? new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP }
            : [PosixSignal.SIGTERM];
        var registrations = signals.Select(signal => PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            TerminatedBy ??= context.Signal;
            _log.Write($"received {context.Signal}: destroying the domain");
            ThreadPool.QueueUserWorkItem(_ => Handle(new ControlRequest { Op = ControlOps.Destroy }));
        })).ToList();
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<PosixSignalRegistration> registrations) : IDisposable
    {
        public void Dispose() => registrations.ForEach(r => r.Dispose());
    }

    /// <summary>The signal that made this VMM destroy its domain, if one did.</summary>
    public PosixSignal? TerminatedBy { get; private set; }

    public DomainInfo Info()
    {
        lock (_gate)
        {
            return new DomainInfo
            {
                Name = _record.Name,
                Id = _record.Id,
                Pid = _record.Pid,
                State = _state,
                Memory = _record.Memory,
                Time = Math.Round(Environment.CpuUsage.TotalTime.TotalSeconds, 1),
                Program = _record.Program,
                Created = _record.Created,
                ExitStatus = _exitStatus,
                Volumes = VolumesInfo(),
                Remus = RemusInfo(),
            };
        }
    }

    /// <summary>Serves one control request (not console); never throws for the client's mistakes.</summary>
    internal ControlResponse Handle(ControlRequest request, Action<string>? progress = null)
    {
        if (request.Op == ControlOps.Info) return Ok(); // never queued behind a pause or destroy in progress
        _ops.Wait();
        try
        {
            return request.Op switch
            {
                ControlOps.Pause => Pause(),
                ControlOps.Unpause => Unpause(),
                ControlOps.Rename => Rename(request.Name),
                ControlOps.Destroy => Destroy(),
                ControlOps.Save => Save(request),
                ControlOps.Migrate => Migrate(request, progress ?? (_ => { })),
                ControlOps.Protect => Protect(request, progress ?? (_ => { })),
                _ => ControlResponse.Failure($"unknown request '{request.Op}'"),
            };
        }
        catch (RemusException e)
        {
            return ControlResponse.Failure(e.Message);
        }
        catch (SandboxException e)
        {
            return ControlResponse.Failure(e.Message);
        }
        finally
        {
            _ops.Release();
        }
    }

    internal Task ServeConsoleAsync(Stream connection, bool replay) => _console.ServeAsync(connection, replay);

    private ControlResponse Ok() => new() { Ok = true, Domain = Info() };

    private ControlResponse Pause()
    {
        lock (_gate)
        {
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
            if (_state == DomainRunState.Paused) return Ok();
            if (!_runCalled)
            {
                // Not started yet: hold the start.
                _state = DomainRunState.Paused;
                _startGate.Reset();
                _log.Write("paused");
                return Ok();
            }
        }
        PauseDomain();
        lock (_gate)
            if (_state == DomainRunState.Running) _state = DomainRunState.Paused;
        _log.Write("paused");
        return Ok();
    }

    /// <summary>
    /// The program stopped itself (SIGSTOP, or a default SIGTSTP/TTIN/TTOU): its domain is paused, as a stopped process
    /// is on Linux, and `remus unpause` continues it as SIGCONT would (there is no parent shell in a domain to do it).
    /// </summary>
    private void ProgramStopped(int signal)
    {
        lock (_gate)
            if (_state == DomainRunState.Running) _state = DomainRunState.Paused;
        _log.Write($"the program stopped itself (signal {signal}); the domain is paused until `remus unpause`");
    }

    private ControlResponse Unpause()
    {
        lock (_gate)
        {
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
            if (_state == DomainRunState.Running) return Ok();
            _state = DomainRunState.Running;
            if (!_runCalled)
            {
                _startGate.Set();
                _log.Write("unpaused: the program starts");
                return Ok();
            }
        }
        try
        {
            UnpauseDomain();
        }
        catch (InvalidOperationException e)
        {
            lock (_gate) if (_state == DomainRunState.Running) _state = DomainRunState.Paused;
            return ControlResponse.Failure($"domain '{Name}': {e.Message}");
        }
        _log.Write("unpaused");
        return Ok();
    }

    private ControlResponse Rename(string? newName)
    {
        if (newName is null) return ControlResponse.Failure("rename needs a new name");
        DomainName.Validate(newName);
        lock (_gate)
            if (_state == DomainRunState.Exited) return ControlResponse.Failure($"domain '{Name}' has exited");
        if (newName == Name) return Ok();
        var old = Name;
        var renamed = _registry.Rename(Id, newName);
        lock (_gate) _record = renamed;
        _log.Write($"renamed '{old}' to '{newName}'");
        return Ok();
    }

    private ControlResponse Destroy()
    {
        bool kill;
        lock (_gate)
        {
            _destroyRequested = true;
            kill = _runCalled && _state != DomainRunState.Exited;
        }
        _log.Write("destroy requested");
        EndProtection();
        if (kill) _domain.Kill();
        _startGate.Set();
        if (!_finished.Wait(KillTimeout))
        {
            _log.Write($"the program did not stop within {KillTimeout.TotalSeconds} s of the kill: the VMM exits");
            _registry.Forget(Id);
            Environment.Exit(1);
        }
        lock (_gate) return new ControlResponse { Ok = true, Domain = Info(), ExitStatus = _exitStatus };
    }

    /// <summary>The program has ended: unregister, tell the consoles, record the exit.</summary>
    private void Retire(int status)
    {
        EndProtection(); // releases what output commit still holds before the console goes
        lock (_gate)
        {
            _state = DomainRunState.Exited;
            _exitStatus = status;
        }
        _log.Write($"program exited with status {status}");
        try
        {
            _registry.Unregister(Id);
        }
        catch (Exception e) when (e is RemusException or IOException or UnauthorizedAccessException)
        {
            _log.Write($"cannot take the run directory's lock to unregister ({e.Message}); removing the entry anyway");
            _registry.Forget(Id);
        }
        _server?.StopAccepting();
        _console.Exit(status, DrainTimeout);
        _finished.Set();
        _server?.WaitForIdle(DrainTimeout);
    }

    public void Dispose()
    {
        _server?.Dispose();
        _domain.Dispose();
        _console.Dispose();
        _log.Write("VMM exits");
        _log.Dispose();
    }
}
