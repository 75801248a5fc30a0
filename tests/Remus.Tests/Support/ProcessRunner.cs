using System.Diagnostics;

namespace Remus.Tests.Support;

/// <summary>Runs one process with given stdin bytes, captures stdout and stderr separately, and enforces a timeout.</summary>
public static class ProcessRunner
{
    /// <param name="fileName">The program; passed to execve as is, and also used as argv[0].</param>
    /// <param name="args">argv[1..].</param>
    /// <param name="stdin">Bytes fed to the process's stdin, which is then closed (null: empty stdin).</param>
    /// <param name="timeout">Scaled by <see cref="TestTimeouts.Scale"/> (10x in kvm-lab). On expiry the process (and its descendants) are killed by pid and a <see cref="TimeoutException"/> is thrown.</param>
    /// <param name="exactEnvironment">If not null, the process gets exactly these variables, in this order, and nothing else.</param>
    /// <param name="extraEnvironment">Variables set on top of the inherited environment (ignored when exactEnvironment is given).</param>
    public static RunResult Run(
        string fileName,
        IEnumerable<string> args,
        byte[]? stdin,
        TimeSpan timeout,
        IEnumerable<KeyValuePair<string, string>>? exactEnvironment = null,
        IEnumerable<KeyValuePair<string, string>>? extraEnvironment = null,
        string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        if (exactEnvironment is not null)
        {
            // Clear, then add in order: the child's envp is exactly this list, in this order.
            psi.Environment.Clear();
            foreach (var (k, v) in exactEnvironment) psi.Environment.Add(k, v);
        }
        else if (extraEnvironment is not null)
        {
            foreach (var (k, v) in extraEnvironment) psi.Environment[k] = v;
        }

        timeout = TestTimeouts.Scaled(timeout); // 10x in kvm-lab: a hang guard, not a timing
        var sw = Stopwatch.StartNew();
        using var p = new Process { StartInfo = psi };
        p.Start();
        var stdoutTask = DrainAsync(p.StandardOutput.BaseStream);
        var stderrTask = DrainAsync(p.StandardError.BaseStream);
        var stdinTask = Task.Run(() =>
        {
            try
            {
                if (stdin is { Length: > 0 }) p.StandardInput.BaseStream.Write(stdin);
            }
            catch (IOException) { } // the program exited or closed stdin without reading it all: fine
            finally
            {
                try { p.StandardInput.Close(); } catch (IOException) { }
            }
        });

        if (!p.WaitForExit(timeout))
        {
            KillByPid(p);
            var partial = new RunResult(-1, TryResult(stdoutTask), TryResult(stderrTask), sw.Elapsed);
            throw new TimeoutException($"{fileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout.TotalSeconds:F0} s; killed pid {SafePid(p)}.\n{partial}");
        }
        // The process is gone; its pipes close unless something it started still holds them.
        var drained = Task.WaitAll([stdoutTask, stderrTask], TimeSpan.FromSeconds(15));
        sw.Stop();
        if (!drained)
        {
            throw new TimeoutException($"{fileName} exited (status {p.ExitCode}) but its stdout/stderr stayed open for 15 s: a process it started was left behind.");
        }
        stdinTask.Wait(TimeSpan.FromSeconds(5));
        return new RunResult(p.ExitCode, stdoutTask.Result, stderrTask.Result, sw.Elapsed);
    }

    private static async Task<byte[]> DrainAsync(Stream s)
    {
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms).ConfigureAwait(false);
        return ms.ToArray();
    }

    private static byte[] TryResult(Task<byte[]> t) => t.Wait(TimeSpan.FromSeconds(2)) ? t.Result : [];

    private static int SafePid(Process p)
    {
        try { return p.Id; } catch (InvalidOperationException) { return -1; }
    }

    /// <summary>Kills exactly this process and its descendants, by their pids (never by name).</summary>
    private static void KillByPid(Process p)
    {
        try { p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // already exited
        catch (System.ComponentModel.Win32Exception) { }
        p.WaitForExit(TimeSpan.FromSeconds(10));
    }

    /// <summary>Full path of an executable found on PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
