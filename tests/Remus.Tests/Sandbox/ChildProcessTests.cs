using Remus.Sandbox.Platform;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>The posix_spawn'd shell command a VMM uses for its migration channel (instead of Process).</summary>
public class ChildProcessTests
{
    [Fact]
    public void Stdin_stdout_and_stderr_are_the_commands_own_and_it_is_reaped_when_done()
    {
        using var child = ChildProcess.StartShell("tr a-z A-Z; echo 'to stderr' >&2");
        child.Stdin.Write("hello over a pipe\n"u8);
        child.Stdin.Dispose(); // end of input: tr finishes
        Assert.Equal("HELLO OVER A PIPE\n", new StreamReader(child.Stdout).ReadToEnd());
        Assert.Equal("to stderr\n", new StreamReader(child.Stderr).ReadToEnd());
        // Reaped by its own thread: the pid disappears instead of lingering as a zombie.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (File.Exists($"/proc/{child.Pid}/stat") && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.False(File.Exists($"/proc/{child.Pid}/stat"), $"pid {child.Pid} was not reaped");
    }

    [Fact]
    public void The_environment_is_passed_on()
    {
        Environment.SetEnvironmentVariable("REMUS_CHILD_TEST", "x y=z");
        using var child = ChildProcess.StartShell("printf %s \"$REMUS_CHILD_TEST\"");
        child.Stdin.Dispose();
        Assert.Equal("x y=z", new StreamReader(child.Stdout).ReadToEnd());
    }

    [Fact]
    public void Runs_in_the_given_directory_with_exactly_the_given_environment_and_reports_its_exit_status()
    {
        string dir = Directory.CreateTempSubdirectory("remus-child-").FullName;
        try
        {
            Environment.SetEnvironmentVariable("REMUS_CHILD_ONLY_HERE", "ours");
            using var child = ChildProcess.StartShell("pwd; printf '%s|%s\\n' \"$CALLER\" \"$REMUS_CHILD_ONLY_HERE\"; exit 7", dir,
                new Dictionary<string, string> { ["CALLER"] = "theirs", ["PATH"] = "/usr/bin:/bin" });
            child.Stdin.Dispose();
            Assert.Equal($"{dir}\ntheirs|\n", new StreamReader(child.Stdout).ReadToEnd());
            Assert.Equal(7, child.WaitForExit(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_missing_working_directory_is_one_clear_error()
    {
        var e = Assert.Throws<IOException>(() => ChildProcess.StartShell("true", "/nonexistent/dir", null));
        Assert.Equal("cannot run 'true' in '/nonexistent/dir': No such file or directory", e.Message);
    }

    [Fact]
    public void A_command_that_cannot_run_says_so_on_its_stderr()
    {
        using var child = ChildProcess.StartShell("/nonexistent/remus-receiver");
        child.Stdin.Dispose();
        Assert.Equal("", new StreamReader(child.Stdout).ReadToEnd());
        Assert.Contains("/nonexistent/remus-receiver", new StreamReader(child.Stderr).ReadToEnd());
    }

    [Fact]
    public void Dispose_does_not_wait_for_a_reader_blocked_on_the_commands_output()
    {
        var child = ChildProcess.StartShell("sleep 5");
        var reading = new ManualResetEventSlim();
        new Thread(() => { reading.Set(); try { new StreamReader(child.Stderr).ReadLine(); } catch (Exception) { } }) { IsBackground = true }.Start();
        reading.Wait();
        Thread.Sleep(100);
        var disposed = Task.Run(child.Dispose);
        Assert.True(disposed.Wait(TimeSpan.FromSeconds(2)), "Dispose waited for the blocked reader");
    }

    [Fact]
    public void The_command_inherits_only_its_three_pipes()
    {
        // An inheritable descriptor of ours (as the guest RAM memfd of a VMM is): dup2 clears close-on-exec.
        using var file = File.OpenHandle("/dev/null");
        const int inheritable = 217;
        Assert.Equal(inheritable, HostOs.dup2((int)file.DangerousGetHandle(), inheritable));
        try
        {
            using var child = ChildProcess.StartShell("ls /proc/self/fd");
            child.Stdin.Dispose();
            var fds = new StreamReader(child.Stdout).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.DoesNotContain(inheritable.ToString(), fds);
            Assert.True(fds.Length <= 4, $"the command has descriptors {string.Join(' ', fds)} (want 0 1 2 and ls's own)");
        }
        finally
        {
            HostOs.close(inheritable);
        }
    }
}
