using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The end-to-end CLI tests (save/restore, migration, Remus failover) run one after another and alone: they time
/// real processes (checkpoint intervals, heartbeats, random kill moments) on a small machine, and other tests
/// competing for the CPU would only make them slower and their timing less realistic.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EndToEndCollection
{
    public const string Name = "Remus end-to-end CLI";
}

/// <summary>The ticker guest (tests/guests/ticker.c), its domain configs and its native output.</summary>
internal static class Ticker
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<string>>> nativeOutputs = new();

    /// <summary>tests/guests/ticker.c built with gcc -static (cached).</summary>
    public static string Program => GuestBuilder.Build("ticker");

    public static string[] Args(int count, int intervalMs, int mib) =>
        [count.ToString(CultureInfo.InvariantCulture), intervalMs.ToString(CultureInfo.InvariantCulture), mib.ToString(CultureInfo.InvariantCulture)];

    /// <summary>
    /// What the same binary prints natively with the same arguments (deterministic, so run once per argument set;
    /// the run starts in the background at the first call and overlaps with the domain's run).
    /// </summary>
    public static Task<string> NativeAsync(int count, int intervalMs, int mib)
    {
        var args = Args(count, intervalMs, mib);
        return nativeOutputs.GetOrAdd(string.Join(' ', args), _ => new Lazy<Task<string>>(() => Task.Run(() =>
        {
            var r = NativeRun.Run(new GuestInvocation(Program) { Args = args }, TimeSpan.FromSeconds(120));
            Assert.True(r.ExitCode == 0, $"native ticker {string.Join(' ', args)}: {r}");
            return r.StdoutText;
        }))).Value;
    }

    public static string Native(int count, int intervalMs, int mib) => NativeAsync(count, intervalMs, mib).GetAwaiter().GetResult();

    /// <summary>Writes NAME.toml into the host's work folder: the ticker with these arguments, console_log at an
    /// absolute path, and the config key <c>platform</c> when <paramref name="platform"/> is given.</summary>
    public static string Config(DomainTestBed host, string name, int count, int intervalMs, int mib, string consoleLog, int memoryMiB = 32,
        PlatformKind? platform = null)
    {
        var args = string.Join(", ", Args(count, intervalMs, mib).Select(a => $"\"{a}\""));
        return host.Config($"{name}.toml", $"""
            name = "{name}"
            memory = {memoryMiB}
            program = "{Program}"
            args = [{args}]
            console_log = "{consoleLog}"
            {E2E.PlatformLine(platform)}
            """);
    }
}

/// <summary>Helpers shared by the end-to-end tests.</summary>
internal static class E2E
{
    /// <summary>The config line <c>platform = "kvm"</c> (or ptrace) that forces a domain's platform; "" for none.</summary>
    public static string PlatformLine(PlatformKind? platform) =>
        platform is { } p ? $"platform = \"{Platforms.Name(p)}\"" : "";

    /// <summary>How long a whole guest run may take before a test gives up.</summary>
    public static readonly TimeSpan GuestPatience = TimeSpan.FromSeconds(60);

    /// <summary>The text of a console_log (read while a VMM may be appending to it); "" if it does not exist yet.</summary>
    public static string ReadText(string path)
    {
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    public static int Lines(string path) => ReadText(path).Count(c => c == '\n');

    public static bool EndsWithDone(string path) => ReadText(path).EndsWith("done\n", StringComparison.Ordinal);

    /// <summary>Waits until <paramref name="condition"/> holds; on timeout fails with <paramref name="what"/> and the details.</summary>
    public static void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null, Func<string>? details = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DomainTestBed.Patience);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new XunitException($"timed out waiting until {what}" + (details is null ? "" : "\n" + details()));
            Thread.Sleep(25);
        }
    }

    /// <summary>Waits until the program printed "done" and its VMM (<paramref name="vmmPid"/>) is gone.</summary>
    public static void WaitForTheEnd(string consoleLog, int vmmPid, Func<string>? details = null)
    {
        WaitUntil(() => EndsWithDone(consoleLog), $"the program ends (console_log {consoleLog} ends with 'done')", GuestPatience,
            () => $"console_log has {Lines(consoleLog)} lines\n" + details?.Invoke());
        WaitUntil(() => !DomainTestBed.ProcessExists(vmmPid), $"the VMM (pid {vmmPid}) exits after its program", GuestPatience, details);
    }

    /// <summary>The VMM pid of "Domain 'x' created: id 1, VMM pid 123, running." (create and restore print it).</summary>
    public static int VmmPid(RunResult created)
    {
        var m = Regex.Match(created.StdoutText, @"VMM pid (\d+)");
        Assert.True(m.Success, $"no 'VMM pid N' in: {created}");
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>A TCP port nobody listens on right now (the kernel's pick, released at once).</summary>
    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>The run directory's VMM logs (logs/*.log), for failure messages.</summary>
    public static string Logs(DomainTestBed host)
    {
        var dir = Path.Combine(host.RunDir, "logs");
        if (!Directory.Exists(dir)) return $"(no logs in {host.RunDir})";
        var sb = new StringBuilder();
        foreach (var file in Directory.GetFiles(dir).Order())
            sb.Append("--- ").Append(Path.GetRelativePath(host.RunDir, file)).AppendLine(" ---").Append(ReadText(file));
        return sb.ToString();
    }

    /// <summary>Console equality with an explanation of the first difference and the VMM logs.</summary>
    public static void SameOutput(string native, string console, params DomainTestBed[] hosts)
    {
        if (native == console) return;
        var diff = GuestAssert.Diff(Encoding.UTF8.GetBytes(native), Encoding.UTF8.GetBytes(console));
        throw new XunitException($"console_log differs from the native output: {diff}\n" + string.Join("\n", hosts.Select(Logs)));
    }

    /// <summary>Runs remus in a host's run dir and asserts it failed with one line "remus: ..." (progress lines excluded by the caller if any).</summary>
    /// <summary>Stderr's lines without the --insecure warning, which a command with <paramref name="insecure"/> gives exactly once.</summary>
    public static string[] WithoutInsecureWarning(string[] lines, bool insecure, object details)
    {
        if (!insecure) return lines;
        Assert.True(lines.Count(l => l.StartsWith(DomainTestBed.InsecureWarning, StringComparison.Ordinal)) == 1, $"want the --insecure warning once: {details}");
        return lines.Where(l => !l.StartsWith(DomainTestBed.InsecureWarning, StringComparison.Ordinal)).ToArray();
    }

    public static string OneLineFailure(RunResult result, string what)
    {
        Assert.True(result.ExitCode != 0, $"{what} should fail: {result}");
        Assert.True(result.Stdout.Length == 0, $"{what}: stdout should be empty: {result}");
        var lines = WithoutInsecureWarning(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries), what.Contains("--insecure"), result);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("remus: ", StringComparison.Ordinal), $"{what}: want exactly one 'remus: ' line on stderr: {result}");
        Assert.DoesNotContain("   at ", result.StderrText);
        Assert.DoesNotContain("internal error", result.StderrText);
        return lines[0];
    }

    /// <summary>The one domain of a host's `remus list --json`, or a failure listing what is there.</summary>
    public static DomainInfo Single(DomainTestBed host, string name)
    {
        var all = host.List();
        return all.SingleOrDefault(d => d.Name == name)
               ?? throw new XunitException($"no domain '{name}' in {host.RunDir}: [{string.Join(", ", all.Select(d => d.Name))}]\n{Logs(host)}");
    }
}

/// <summary>
/// A `remus migrate-receive ...` started directly by a test in a host's run directory: it becomes the VMM of the
/// arriving domain and stays until that domain ends. Its stderr is collected; disposing kills it by its own pid
/// (not its process tree) if it still runs.
/// </summary>
internal sealed class Receiver : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _stdout = new();

    private Receiver(Process process)
    {
        _process = process;
    }

    public static Receiver Start(DomainTestBed host, params string[] args)
    {
        var psi = new ProcessStartInfo(RemusCli.DotnetPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add(RemusCli.DllPath);
        psi.ArgumentList.Add("migrate-receive");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["REMUS_RUN_DIR"] = host.RunDir;
        var process = new Process { StartInfo = psi };
        var receiver = new Receiver(process);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (receiver._stderr) receiver._stderr.Append(e.Data).Append('\n'); };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (receiver._stdout) receiver._stdout.Append(e.Data).Append('\n'); };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        process.StandardInput.Close();
        return receiver;
    }

    /// <summary>
    /// Starts `migrate-receive [-r] --tcp-listen 127.0.0.1:PORT ...` on a free port and waits until it listens:
    /// plain TCP (--insecure) unless <paramref name="extra"/> chooses a protection (--tls-cert..., --psk-file).
    /// A TCP receiver allows no host path unless told: with --allow-path in <paramref name="extra"/> (the folders of
    /// the test's console_log, files, netns), the folder of the test programs (<see cref="GuestBuilder.CacheDir"/>,
    /// which every stream names as its program) is allowed too.
    /// </summary>
    public static Receiver Listen(DomainTestBed host, bool remus, out int port, params string[] extra)
    {
        port = E2E.FreePort();
        bool protection = extra.Any(a => a is "--tls-cert" or "--psk-file" or "--insecure");
        string[] programs = extra.Contains("--allow-path") ? ["--allow-path", GuestBuilder.CacheDir] : [];
        string[] args = [.. remus ? new[] { "-r" } : [], "--tcp-listen", $"127.0.0.1:{port}", .. protection ? [] : new[] { "--insecure" }, .. programs, .. extra];
        var receiver = Start(host, args);
        receiver.WaitForStderr("waiting for a", TimeSpan.FromSeconds(30));
        return receiver;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    public void WaitForStderr(string text, TimeSpan timeout)
    {
        E2E.WaitUntil(() => Stderr.Contains(text, StringComparison.Ordinal) || _process.HasExited,
            $"the receiver (pid {Pid}) says '{text}' on stderr", timeout, Describe);
        if (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            _process.WaitForExit(); // it exited: collect all it said
            if (!Stderr.Contains(text, StringComparison.Ordinal))
                throw new XunitException($"the receiver exited without saying '{text}'\n{Describe()}");
        }
    }

    /// <summary>Waits for the receiver to exit and returns its exit status (the guest program's, once it ran its domain).</summary>
    public int WaitForExit(TimeSpan timeout, Func<string>? details = null)
    {
        if (!_process.WaitForExit(timeout))
            throw new XunitException($"the receiver (pid {Pid}) did not exit within {timeout.TotalSeconds:F0} s\n{Describe()}\n{details?.Invoke()}");
        _process.WaitForExit(); // drain the async stderr/stdout readers
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, by this process's own pid.</summary>
    public void Kill()
    {
        try { _process.Kill(entireProcessTree: false); }
        catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
    }

    public string Describe() =>
        $"receiver pid {SafePid()} {(_process.HasExited ? $"exited {_process.ExitCode}" : "running")}\n--- receiver stderr ---\n{Stderr}--- receiver stdout ---\n{Stdout}";

    private string SafePid()
    {
        try { return _process.Id.ToString(CultureInfo.InvariantCulture); } catch (InvalidOperationException) { return "?"; }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
