using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Remus.Sandbox;
using Remus.Toolstack.Console;
using Remus.Sandbox.Platform;
using Remus.Toolstack.Registry;

namespace Remus.Toolstack.Vmm;

/// <summary>
/// The body of a detached VMM process (the hidden <c>remus __vmm</c> command started by <see cref="VmmLauncher"/>):
/// reads its <see cref="VmmStartRequest"/> from stdin, starts a new session (setsid), loads and registers the domain,
/// reports ready or the error on stdout, points stdin/stdout at /dev/null and stderr at its log, and runs the domain
/// until the program exits. It uses no System.Diagnostics.Process (whose SIGCHLD reaper would disturb the sandbox).
/// </summary>
public static class VmmProcess
{
    public static int RunDetached()
    {
        VmmStartRequest request;
        try
        {
            using var stdin = new FileStream(new SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
            request = JsonSerializer.Deserialize(stdin, ToolstackJson.Default.VmmStartRequest)
                      ?? throw new JsonException("empty start request");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            Report(new VmmStartReport { Ok = false, Error = $"bad VMM start request: {e.Message}" });
            return 2;
        }

        HostOs.setsid(); // fails only if we already lead a process group, which is fine too
        Directory.SetCurrentDirectory("/");

        VmmHost host;
        try
        {
            var options = new VmmOptions { StartPaused = request.Paused };
            host = request.RestoreFile is { } file
                ? VmmHost.Start(request.Config, new RunDirectory(request.RunDirectory), options, IncomingVmm.RestoreFrom(file))
                : VmmHost.Start(request.Config, new RunDirectory(request.RunDirectory), options);
        }
        catch (Exception e) when (e is RemusException or SandboxException or Remus.Checkpoint.Stream.CheckpointStreamException)
        {
            Report(new VmmStartReport { Ok = false, Error = e.Message });
            return 1;
        }
        catch (Exception e)
        {
            Report(new VmmStartReport { Ok = false, Error = $"internal error in the VMM: {e.GetType().Name}: {e.Message}" });
            return 70;
        }

        var notes = new List<string>();
        if (request.RestoreFile != null)
        {
            // Restore done: the volumes' copies, built from the file, become the domain's before it runs.
            try
            {
                host.CommitVolumes(VmmHost.VolumePatience, notes.Add);
            }
            catch (RemusException e)
            {
                host.Abandon(e.Message);
                Report(new VmmStartReport { Ok = false, Error = e.Message });
                return 1;
            }
        }

        using (host)
        {
            Report(new VmmStartReport { Ok = true, Id = host.Id, Name = host.Name, Pid = Environment.ProcessId, Notes = notes.Count > 0 ? notes : null });
            Detach(host.LogPath);
            using (host.HandleTerminationSignals())
                host.RunToCompletion();
        }
        return 0;
    }

    private static void Report(VmmStartReport report)
    {
        var line = JsonSerializer.Serialize(report, ToolstackJson.Default.VmmStartReport) + "\n";
        FdIo.WriteAll(1, Encoding.UTF8.GetBytes(line));
    }

    /// <summary>stdin and stdout to /dev/null (closing the launcher's pipes), stderr to the VMM log.</summary>
    internal static void Detach(string logPath)
    {
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite);
        var nullFd = (int)devNull.DangerousGetHandle();
        HostOs.dup2(nullFd, 0);
        HostOs.dup2(nullFd, 1);
        var logFd = HostOs.open(logPath, HostOs.O_WRONLY | HostOs.O_APPEND | HostOs.O_CREAT | HostOs.O_CLOEXEC, 0b110_100_000);
        HostOs.dup2(logFd >= 0 ? logFd : nullFd, 2);
        if (logFd >= 0) HostOs.close(logFd);
    }
}
