using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Remus.Toolstack.Config;
using Remus.Toolstack.Registry;

namespace Remus.Toolstack.Vmm;

/// <summary>How to start this program's hidden VMM command: an executable and the arguments before the verb.</summary>
public sealed record VmmCommand(string FileName, IReadOnlyList<string> LeadingArguments)
{
    public const string Verb = "__vmm";

    /// <summary>This process's own program: the apphost, or <c>dotnet remus.dll</c>.</summary>
    public static VmmCommand Current()
    {
        var processPath = Environment.ProcessPath ?? throw new RemusException("cannot tell which program this is");
        var entry = Assembly.GetEntryAssembly()?.Location;
        return Path.GetFileNameWithoutExtension(processPath) == "dotnet" && !string.IsNullOrEmpty(entry)
            ? new VmmCommand(processPath, [entry])
            : new VmmCommand(processPath, []);
    }
}

/// <summary>
/// Starts a detached VMM (CLI side) and waits until it reports that the domain is loaded and registered, or why not.
/// A VMM that fails leaves nothing behind: it exits after reporting (and is killed if it does not).
/// </summary>
public static class VmmLauncher
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    public static VmmStartReport Launch(DomainConfig config, bool paused, RunDirectory runDirectory, VmmCommand command, string? restoreFile = null)
    {
        var start = new ProcessStartInfo(command.FileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in command.LeadingArguments) start.ArgumentList.Add(argument);
        start.ArgumentList.Add(VmmCommand.Verb);
        start.Environment[RunDirectory.EnvironmentVariable] = runDirectory.Path;

        using var vmm = Process.Start(start) ?? throw new RemusException($"cannot start '{command.FileName}'");
        var stderr = new StringBuilder();
        vmm.ErrorDataReceived += (_, e) =>
        {
            lock (stderr) if (e.Data is { } line && stderr.Length < 64 * 1024) stderr.AppendLine(line);
        };
        vmm.BeginErrorReadLine();

        var request = new VmmStartRequest { Config = config, Paused = paused, RunDirectory = runDirectory.Path, RestoreFile = restoreFile };
        try
        {
            vmm.StandardInput.Write(JsonSerializer.Serialize(request, ToolstackJson.Default.VmmStartRequest));
            vmm.StandardInput.Close();
        }
        catch (IOException)
        {
            // It died already; the missing report says so below.
        }

        var line = vmm.StandardOutput.ReadLineAsync();
        if (!line.Wait(ReadyTimeout))
        {
            KillQuietly(vmm);
            throw new RemusException($"the VMM did not report ready within {ReadyTimeout.TotalSeconds} s (killed it)");
        }
        if (line.Result is not { Length: > 0 } text)
        {
            vmm.WaitForExit(TimeSpan.FromSeconds(5));
            string detail;
            lock (stderr) detail = FirstLine(stderr.ToString());
            throw new RemusException("the VMM exited before the domain was ready" + (detail.Length > 0 ? $": {detail}" : ""));
        }

        VmmStartReport report;
        try
        {
            report = JsonSerializer.Deserialize(text, ToolstackJson.Default.VmmStartReport)
                     ?? throw new JsonException("empty report");
        }
        catch (JsonException)
        {
            KillQuietly(vmm);
            throw new RemusException($"the VMM reported something unexpected: {text}");
        }
        if (!report.Ok)
        {
            if (!vmm.WaitForExit(TimeSpan.FromSeconds(5))) KillQuietly(vmm);
            throw new RemusException(report.Error ?? "the VMM failed");
        }
        return report;
    }

    private static void KillQuietly(Process vmm)
    {
        try
        {
            vmm.Kill();
            vmm.WaitForExit(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
}
