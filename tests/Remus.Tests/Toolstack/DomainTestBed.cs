using System.Text;
using Remus.Tests.Support;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// A run directory of its own (REMUS_RUN_DIR under the temp folder) and the real `remus` CLI (dotnet remus.dll)
/// run against it. On dispose, any VMM still running for this run directory is killed by its own pid.
/// </summary>
internal sealed class DomainTestBed : IDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public DomainTestBed()
    {
        RunDir = Path.Combine(Path.GetTempPath(), "rt-" + Guid.NewGuid().ToString("N")[..10]);
        Work = Path.Combine(RunDir, "work");
        Directory.CreateDirectory(Work);
    }

    /// <summary>REMUS_RUN_DIR for every command.</summary>
    public string RunDir { get; }

    /// <summary>A folder for configs and logs.</summary>
    public string Work { get; }

    public string DomainsDir => Path.Combine(RunDir, "domains");

    public RunResult Remus(params string[] args) => Remus(args, stdin: null);

    public RunResult Remus(IReadOnlyList<string> args, byte[]? stdin, TimeSpan? timeout = null, string? workingDirectory = null,
        IEnumerable<KeyValuePair<string, string>>? environment = null) =>
        ProcessRunner.Run(RemusCli.DotnetPath, [RemusCli.DllPath, .. args], stdin, timeout ?? TimeSpan.FromSeconds(60),
            extraEnvironment: [new("REMUS_RUN_DIR", RunDir), .. environment ?? []], workingDirectory: workingDirectory);

    /// <summary>Runs remus and asserts it succeeded.</summary>
    public RunResult Ok(params string[] args)
    {
        var result = Remus(args);
        Assert.True(result.ExitCode == 0, $"remus {string.Join(' ', args)}: {result}");
        return result;
    }

    /// <summary>The warning a plain TCP channel (--insecure) gives once, before whatever else a command says.</summary>
    public const string InsecureWarning = "remus: warning: the channel to/from ";

    /// <summary>
    /// Runs remus and asserts it failed with exactly one "remus: ..." line on stderr (besides the --insecure warning,
    /// at most once); returns that line.
    /// </summary>
    public string Fails(params string[] args)
    {
        var result = Remus(args);
        Assert.True(result.ExitCode != 0, $"remus {string.Join(' ', args)} should fail: {result}");
        var lines = result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (args.Contains("--insecure"))
        {
            Assert.True(lines.Count(l => l.StartsWith(InsecureWarning, StringComparison.Ordinal)) == 1, $"want the --insecure warning once: {result}");
            lines = lines.Where(l => !l.StartsWith(InsecureWarning, StringComparison.Ordinal)).ToArray();
        }
        Assert.True(lines.Length == 1 && lines[0].StartsWith("remus: ", StringComparison.Ordinal), $"want one 'remus: ' line: {result}");
        Assert.Empty(result.StdoutText);
        return lines[0];
    }

    public List<DomainInfo> List()
    {
        var result = Ok("list", "--json");
        return DomainInfo.ListFromJson(result.StdoutText);
    }

    public DomainInfo Domain(string name) =>
        List().SingleOrDefault(d => d.Name == name) ?? throw new Xunit.Sdk.XunitException($"no domain '{name}' in remus list");

    /// <summary>Writes a config file into <see cref="Work"/> and returns its path.</summary>
    public string Config(string fileName, string toml)
    {
        var path = Path.Combine(Work, fileName);
        File.WriteAllText(path, toml);
        return path;
    }

    public string ReadLog(string fileName)
    {
        var path = Path.Combine(Work, fileName);
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    public static void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Patience);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"timed out waiting until {what}");
            Thread.Sleep(50);
        }
    }

    public static bool ProcessExists(int pid) => Directory.Exists($"/proc/{pid}") && !IsZombie(pid);

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Processes whose environment names this run directory (VMMs, and any remus command running now).</summary>
    public IReadOnlyList<int> ProcessesOfThisRunDir()
    {
        var marker = Encoding.UTF8.GetBytes($"REMUS_RUN_DIR={RunDir}\0");
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                var environ = File.ReadAllBytes(Path.Combine(dir, "environ"));
                if (environ.AsSpan().IndexOf(marker) >= 0 && !IsZombie(pid)) pids.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return pids;
    }

    /// <summary>The entries of domains/ (registry entries and sockets).</summary>
    public string[] DomainEntries() =>
        Directory.Exists(DomainsDir) ? Directory.GetFileSystemEntries(DomainsDir).Select(p => Path.GetFileName(p)).Order().ToArray() : [];

    public void Dispose()
    {
        foreach (var pid in ProcessesOfThisRunDir())
        {
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        try { Directory.Delete(RunDir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
