using System.Diagnostics;
using System.Text;

namespace Remus.Soak.Harness;

/// <summary>A `remus` process started in the background whose stdout and stderr are collected line by line.</summary>
internal sealed class RemusBackground : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _stdout = new();
    private readonly List<(string Line, long At)> _lines = [];

    public RemusBackground(Process p)
    {
        _p = p;
        Pid = p.Id;
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            long at = Stopwatch.GetTimestamp();
            lock (_stderr)
            {
                _stderr.Append(e.Data).Append('\n');
                _lines.Add((e.Data, at));
            }
        };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stdout) _stdout.Append(e.Data).Append('\n');
        };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        p.StandardInput.Close();
    }

    /// <summary>The process's own pid (kept: it stays readable after the process ended).</summary>
    public int Pid { get; }

    public bool HasExited => _p.HasExited;

    /// <summary>SIGKILL, by this process's own pid, if it still runs.</summary>
    public void Kill()
    {
        try { if (!_p.HasExited) _p.Kill(entireProcessTree: false); }
        catch (InvalidOperationException) { }
    }

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the process to end; its exit status, or null if it still runs.</summary>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout)) return null;
        _p.WaitForExit(); // drain the stdout/stderr readers
        return _p.ExitCode;
    }

    /// <summary>Waits for a stderr line containing <paramref name="text"/>; returns when it arrived (Stopwatch ticks).</summary>
    public long WaitForStderr(string text, int seconds = 60)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            lock (_stderr)
                foreach (var (line, at) in _lines)
                    if (line.Contains(text, StringComparison.Ordinal)) return at;
            if (_p.HasExited || DateTime.UtcNow > deadline) throw new InvalidOperationException($"the receiver did not say '{text}': {Stderr}");
            Thread.Sleep(10);
        }
    }

    public void Dispose() => _p.Dispose();
}
