using Xunit;

namespace Remus.Tests.Support;

/// <summary>Sends a signal to one process, by its own pid, with kill(1) (the tests use no P/Invoke).</summary>
public static class Signals
{
    /// <summary>`kill -s SIGNAL PID`; returns once the signal was sent (kill(2) returned).</summary>
    public static void Send(int pid, string signal)
    {
        var r = ProcessRunner.Run(ProcessRunner.FindOnPath("kill") ?? "/bin/kill", ["-s", signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            null, TimeSpan.FromSeconds(20));
        Assert.True(r.ExitCode == 0, $"kill -s {signal} {pid}: {r}");
    }
}
