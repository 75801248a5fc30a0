namespace Remus.Tests.Support;

/// <summary>Runs the real `remus` command (src/Remus.Cli, assembly remus.dll) as a child process: `dotnet remus.dll args...`.</summary>
public static class RemusCli
{
    private static readonly Lazy<string> dll = new(FindDll);
    private static readonly Lazy<string> dotnet = new(FindDotnet);

    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(20);

    /// <summary>remus.dll: next to the test assembly (the project reference copies it), else the newest build under src/Remus.Cli/bin.</summary>
    public static string DllPath => dll.Value;

    /// <summary>The dotnet host used to run remus.dll.</summary>
    public static string DotnetPath => dotnet.Value;

    /// <summary>
    /// Runs `remus args...` with the given stdin bytes (then closed) and returns its exit status and its stdout and
    /// stderr separately. Each run gets its own fresh REMUS_RUN_DIR (a temp directory, removed afterwards); whatever
    /// remus left in it is reported in <see cref="RunResult.LeftBehind"/>. On timeout remus and its descendants are
    /// killed by pid and <see cref="TimeoutException"/> is thrown.
    /// </summary>
    public static RunResult Run(IReadOnlyList<string> args, byte[]? stdin = null, TimeSpan? timeout = null,
        IEnumerable<KeyValuePair<string, string>>? extraEnvironment = null)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"remus-test-run-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(runDir);
        try
        {
            var env = new List<KeyValuePair<string, string>> { new("REMUS_RUN_DIR", runDir) };
            if (extraEnvironment is not null) env.AddRange(extraEnvironment);
            var r = ProcessRunner.Run(DotnetPath, [DllPath, .. args], stdin, timeout ?? DefaultTimeout, extraEnvironment: env);
            var left = Directory.Exists(runDir)
                ? Directory.EnumerateFileSystemEntries(runDir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(runDir, p)).Order().ToArray()
                : [];
            return r with { LeftBehind = left };
        }
        finally
        {
            try { if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Runs the guest in a domain: `remus run [--memory] [--env]... [--file]... program args...` with the guest's stdin.</summary>
    public static RunResult Run(GuestInvocation guest, TimeSpan? timeout = null) =>
        Run(guest.ToRemusArgs(), guest.Stdin, timeout);

    private static string FindDll()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "remus.dll");
        if (File.Exists(here) && File.Exists(Path.Combine(AppContext.BaseDirectory, "remus.runtimeconfig.json"))) return here;

        // Fallback: the CLI project's own output (newest build wins).
        var bin = Path.Combine(GuestBuilder.RepoRoot, "src", "Remus.Cli", "bin");
        var found = Directory.Exists(bin)
            ? Directory.EnumerateFiles(bin, "remus.dll", SearchOption.AllDirectories)
                .Where(p => File.Exists(Path.ChangeExtension(p, ".runtimeconfig.json")))
                .OrderByDescending(File.GetLastWriteTimeUtc)
                .FirstOrDefault()
            : null;
        return found ?? throw new FileNotFoundException(
            $"remus.dll (with remus.runtimeconfig.json) is neither in {AppContext.BaseDirectory} nor under {bin}; build src/Remus.Cli");
    }

    private static string FindDotnet()
    {
        // Set by the dotnet CLI for the processes it starts (dotnet test, MSBuild).
        var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath)) return hostPath;
        // The test host itself usually runs under the dotnet muxer.
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileName(self) == "dotnet") return self;
        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root) && File.Exists(Path.Combine(root, "dotnet"))) return Path.Combine(root, "dotnet");
        return ProcessRunner.FindOnPath("dotnet") ?? "dotnet";
    }
}
