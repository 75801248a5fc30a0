using System.Text.Json;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>The limits of a domain's config (max_fds, max_threads, held_output_mib): read, checked, carried in streams.</summary>
public sealed class LimitsConfigTests
{
    private static DomainConfig Parse(string toml) => ConfigLoader.Parse("name = \"a\"\nprogram = \"/bin/p\"\n" + toml, "a.toml", "/srv");

    private static string Error(string toml) => Assert.Throws<ConfigException>(() => Parse(toml)).Message;

    [Fact]
    public void Limits_are_read_and_reach_the_spec()
    {
        var c = Parse("max_fds = 256\nmax_threads = 16\nheld_output_mib = 4\n");
        Assert.Equal(256, c.MaxFds);
        Assert.Equal(16, c.MaxThreads);
        Assert.Equal(4L << 20, c.HeldOutputBytes);
        var spec = c.ToSpec();
        Assert.Equal(256, spec.MaxFds);
        Assert.Equal(16, spec.MaxThreads);
    }

    [Fact]
    public void Defaults_keep_ordinary_programs_working()
    {
        var c = Parse("");
        Assert.Null(c.MaxFds);
        Assert.Null(c.MaxThreads);
        Assert.Equal(OutputCommitConsole.DefaultHeldLimit, c.HeldOutputBytes);
        Assert.Equal(1024, c.ToSpec().MaxFds);
        Assert.Null(c.ToSpec().MaxThreads);
        Assert.Equal(OutputCommitConsole.DefaultHeldLimit, new OutputCommitConsole(new Checkpoint.RecordingConsole()).HeldLimit);
    }

    [Theory]
    [InlineData("max_fds = 4", "a.toml:3: 'max_fds' must be between 8 and 1024, not 4")]
    [InlineData("max_fds = 5000", "a.toml:3: 'max_fds' must be between 8 and 1024, not 5000")]
    [InlineData("max_fds = \"many\"", "a.toml:3: 'max_fds' must be an integer, not a string")]
    [InlineData("max_threads = 0", "a.toml:3: 'max_threads' must be between 1 and 512, not 0")]
    [InlineData("max_threads = 1.5", "a.toml:3: 'max_threads' must be an integer, not a float")]
    [InlineData("held_output_mib = 0", "a.toml:3: 'held_output_mib' must be between 1 and 1024 MiB, not 0")]
    [InlineData("held_output_mib = 2048", "a.toml:3: 'held_output_mib' must be between 1 and 1024 MiB, not 2048")]
    [InlineData("max_fds = 10\nmax_fds = 12", "a.toml:4: duplicate key 'max_fds' (first set on line 3)")]
    public void Bad_limits_are_refused_with_their_line(string toml, string message)
    {
        Assert.Equal(message, Error(toml));
    }

    [Fact]
    public void Limits_travel_in_a_streams_config_and_a_bad_one_is_refused()
    {
        var c = Parse("max_fds = 64\nmax_threads = 3\nheld_output_mib = 2\n");
        var back = JsonSerializer.Deserialize(JsonSerializer.Serialize(c, ToolstackJson.Default.DomainConfig), ToolstackJson.Default.DomainConfig)!;
        Assert.Equal((64, 3, 2), (back.MaxFds, back.MaxThreads, back.HeldOutputMiB));
        Assert.Null(DomainConfigShape.Problem(back));

        var old = JsonSerializer.Deserialize("{\"Name\":\"a\",\"Program\":\"/bin/p\"}", ToolstackJson.Default.DomainConfig)!;
        Assert.Equal((null, null, null), (old.MaxFds, old.MaxThreads, old.HeldOutputMiB)); // a stream from before: defaults
        Assert.Null(DomainConfigShape.Problem(old));

        Assert.Equal("'max_fds' must be between 8 and 1024, not 2", DomainConfigShape.Problem(back with { MaxFds = 2 }));
        Assert.Equal("'held_output_mib' must be between 1 and 1024 (MiB), not -1", DomainConfigShape.Problem(back with { HeldOutputMiB = -1 }));
    }

    /// <summary>Through the real CLI and a VMM process (`create -F`): the config's limits reach the program.</summary>
    [Fact]
    public void A_created_domains_limits_reach_its_program()
    {
        using var bed = new Remus.Tests.Toolstack.DomainTestBed();
        string exhaust = Remus.Tests.Support.GuestBuilder.Build("exhaust");
        var fds = bed.Remus(["create", "-F", bed.Config("fds.toml", $"name = \"fds\"\nmemory = 32\nprogram = \"{exhaust}\"\nargs = [\"fds\", \"show\"]\nmax_fds = 100\n")], [], TimeSpan.FromSeconds(120));
        Assert.True(fds.ExitCode == 0, fds.ToString());
        Assert.Contains("soft limit 100, hard limit 100", fds.StdoutText);
        Assert.Contains("all checks held", fds.StdoutText);
        var threads = bed.Remus(["create", "-F", bed.Config("threads.toml", $"name = \"threads\"\nmemory = 32\nprogram = \"{exhaust}\"\nargs = [\"threads\"]\nmax_threads = 4\nheld_output_mib = 1\n")], [], TimeSpan.FromSeconds(120));
        Assert.True(threads.ExitCode == 0, threads.ToString());
        Assert.Contains("created 3 besides main, then EAGAIN", threads.StdoutText);
        var bad = bed.Remus(["create", "-F", bed.Config("bad.toml", $"name = \"bad\"\nprogram = \"{exhaust}\"\nmax_threads = 1000\n")], [], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("'max_threads' must be between 1 and 512, not 1000", bad.StderrText);
    }
}
