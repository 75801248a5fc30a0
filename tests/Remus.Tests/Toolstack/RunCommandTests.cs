using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>`remus run`: foreground, stdio passed through and kept apart, the program's exit status is ours.</summary>
public sealed class RunCommandTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(42)]
    [InlineData(255)]
    public void Exit_status_passes_through(int status)
    {
        var streams = ToolstackGuests.Build("streams", ToolstackGuests.Streams);
        var result = RemusCli.Run(["run", streams, status.ToString(System.Globalization.CultureInfo.InvariantCulture), "4"]);
        Assert.Equal(status, result.ExitCode);
        Assert.Equal("out 1\nout 3\n", result.StdoutText);
        Assert.Equal("err 2\nerr 4\n", result.StderrText);
        Assert.Empty(result.LeftBehind);
    }

    [Fact]
    public void Options_after_the_program_belong_to_the_program()
    {
        var echoer = ToolstackGuests.Build("echoer", ToolstackGuests.Echoer);
        var result = RemusCli.Run(["run", "--memory", "16", echoer, "--memory", "1", "--help"], "a\n"u8.ToArray());
        Assert.Equal(3, result.ExitCode);
        Assert.Equal("ready\ngot: a\n", result.StdoutText);
    }

    [Fact]
    public void Remus_own_failures_are_one_line_and_status_125()
    {
        var result = RemusCli.Run(["run", "/nonexistent/program"]);
        Assert.Equal(125, result.ExitCode);
        Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: ", result.StderrText);
    }

    [Theory]
    [InlineData("--memory", "lots")]
    [InlineData("--env", "NOEQUALS")]
    [InlineData("--bogus", "x")]
    public void Bad_options_are_one_line_usage_errors(string option, string value)
    {
        var echoer = ToolstackGuests.Build("echoer", ToolstackGuests.Echoer);
        var result = RemusCli.Run(["run", option, value, echoer]);
        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: ", result.StderrText);
        Assert.Empty(result.StdoutText);
    }

    [Fact]
    public void Every_command_has_help()
    {
        foreach (var verb in new[] { "run", "create", "list", "console", "pause", "unpause", "destroy", "rename" })
        {
            var result = RemusCli.Run([verb, "--help"]);
            Assert.True(result.ExitCode == 0, $"{verb} --help: {result}");
            Assert.Contains("Usage:", result.StdoutText);
            Assert.Contains($"remus {verb}", result.StdoutText);
        }
        var root = RemusCli.Run(["--help"]);
        Assert.Equal(0, root.ExitCode);
        Assert.DoesNotContain("__vmm", root.StdoutText);
    }
}
