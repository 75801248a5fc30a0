using System.Diagnostics;

namespace Remus.Soak.Harness;

/// <summary>
/// A run directory of its own (one "host") and the `remus` CLI run against it, as a user runs it: each command is a
/// `dotnet remus.dll ...` process with REMUS_RUN_DIR set. Shared by the failover benchmark (bench/Remus.Bench), the soak
/// harness (bench/soak) and its short version in the tests (Hardening/SoakShortTests).
/// </summary>
internal sealed class RemusHost(string dll, string prefix = "remus-host-") : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    private ProcessStartInfo Info(string[] args)
    {
        var psi = new ProcessStartInfo(DotnetPath())
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["REMUS_RUN_DIR"] = Dir;
        return psi;
    }

    /// <summary>Runs `remus args` to its end; throws unless it succeeded; returns its stdout.</summary>
    public string Run(params string[] args)
    {
        var (code, stdout, stderr) = Exec(args);
        if (code != 0) throw new InvalidOperationException($"remus {string.Join(' ', args)} failed ({code}): {stderr}");
        return stdout;
    }

    /// <summary>Runs `remus args` to its end and returns its exit status and output, whatever the status.</summary>
    public (int ExitCode, string Stdout, string Stderr) Exec(params string[] args)
    {
        using var p = Process.Start(Info(args))!;
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: false);
            throw new TimeoutException($"remus {string.Join(' ', args)} did not end");
        }
        return (p.ExitCode, so.Result, se.Result);
    }

    public void TryRun(params string[] args)
    {
        try { Exec(args); } catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception) { /* cleanup only */ }
    }

    /// <summary>Starts a long-running `remus args` (a backup's receiver, which becomes its VMM; a `protect` in flight).</summary>
    public RemusBackground Start(params string[] args) => new(Process.Start(Info(args))!);

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static string DotnetPath() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } self && Path.GetFileName(self) == "dotnet" ? self
        : "dotnet";
}
