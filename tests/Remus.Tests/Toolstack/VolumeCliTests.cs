using Remus.Tests.Support;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// Volumes through the real CLI: `create` makes a missing source and `list` shows the volumes, `run --volume` refuses
/// bad values in one line, `restore --volumes DIR` keeps them under DIR, and a failed restore leaves no staging copy.
/// </summary>
public sealed class VolumeCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private string TickerConfig(string name, string volumeSource, string extra = "") => _bed.Config($"{name}.toml", $"""
        name = "{name}"
        memory = 16
        program = "{ToolstackGuests.Build("ticker", ToolstackGuests.Ticker)}"
        args = ["20"]
        console_log = "{name}.log"
        {extra}
        [[volume]]
        source = "{volumeSource}"
        target = "/data/"
        """);

    [Fact]
    public void Create_makes_the_source_and_list_shows_the_volumes_and_the_tmpfs()
    {
        _bed.Ok("create", TickerConfig("shop", "vols/shop"));
        string source = Path.Combine(_bed.Work, "vols", "shop");
        Assert.True(Directory.Exists(source), "the missing source directory was not created");

        var volumes = _bed.Domain("shop").Volumes;
        Assert.NotNull(volumes);
        Assert.Equal(2, volumes.Count);
        Assert.Equal(new VolumeInfo { Target = "/data", HostPath = source }, volumes[0]);
        Assert.Equal(new VolumeInfo { Target = "/tmp", Tmpfs = true }, volumes[1]);

        var text = _bed.Ok("list").StdoutText;
        Assert.Contains("Volumes", text);
        Assert.Contains($"/data={source}", text);
        _bed.Ok("destroy", "shop");
    }

    [Fact]
    public void Tmpfs_false_is_no_tmp_in_the_list()
    {
        _bed.Ok("create", TickerConfig("notmp", "d", "tmpfs = false"));
        var volume = Assert.Single(_bed.Domain("notmp").Volumes!);
        Assert.Equal("/data", volume.Target);
        _bed.Ok("destroy", "notmp");
    }

    [Theory]
    [InlineData("nocolon")]
    [InlineData("d:relative")]
    [InlineData("d:/")]
    [InlineData("d:/proc/self")]
    public void Run_refuses_a_bad_volume_as_a_usage_error(string value)
    {
        var result = _bed.Remus(["run", "--volume", value, ToolstackGuests.Build("streams", ToolstackGuests.Streams)], null,
            workingDirectory: _bed.Work);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: --volume", line);
        Assert.Empty(result.StdoutText);
    }

    [Theory]
    [InlineData("a:/d", "b:/d", "is the target of another volume too")]
    [InlineData("a:/d", "b:/d/e", "volumes cannot be inside one another")]
    [InlineData("a:/d", "a/b:/e", "cannot be inside another's")]
    [InlineData("a:/tmp/x", null, "is inside the tmpfs at /tmp")]
    public void Run_refuses_volumes_that_clash_in_one_line(string first, string? second, string expected)
    {
        var streams = ToolstackGuests.Build("streams", ToolstackGuests.Streams);
        string[] args = second is null ? ["run", "--volume", first, streams] : ["run", "--volume", first, "--volume", second, streams];
        var result = _bed.Remus(args, null, workingDirectory: _bed.Work);
        Assert.Equal(125, result.ExitCode);
        var line = Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: --volume", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Restore_with_volumes_dir_keeps_each_volume_at_dir_slash_target()
    {
        _bed.Ok("create", TickerConfig("kept", "orig"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog("kept.log").Contains("tick 3"), "the ticker printed");
        string save = Path.Combine(_bed.Work, "kept.sav");
        _bed.Ok("save", "kept", save);
        DomainTestBed.WaitUntil(() => _bed.ProcessesOfThisRunDir().Count == 0, "the saved domain's VMM exits");

        string dir = Path.Combine(_bed.Work, "restored");
        var restored = _bed.Remus(["restore", "--volumes", "restored", save], null, workingDirectory: _bed.Work);
        Assert.True(restored.ExitCode == 0, restored.ToString());
        var volumes = _bed.Domain("kept").Volumes!;
        Assert.Equal(Path.Combine(dir, "data"), volumes[0].HostPath);
        Assert.True(volumes[1].Tmpfs);
        Assert.False(Directory.Exists(Path.Combine(dir, "data.remus-incoming")), "the staging copy was left behind");
        _bed.Ok("destroy", "kept");
    }

    [Fact]
    public void A_failed_restore_leaves_no_staging_copy()
    {
        _bed.Ok("create", TickerConfig("lost", "orig"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog("lost.log").Contains("tick 3"), "the ticker printed");
        string save = Path.Combine(_bed.Work, "lost.sav");
        _bed.Ok("save", "lost", save);
        DomainTestBed.WaitUntil(() => _bed.ProcessesOfThisRunDir().Count == 0, "the saved domain's VMM exits");
        var bytes = File.ReadAllBytes(save);
        File.WriteAllBytes(save, bytes[..(bytes.Length / 2)]);

        // A copy under way where the restore builds its copy: a failed restore keeps nothing of what it received.
        string dir = Path.Combine(_bed.Work, "restored");
        string staging = Path.Combine(dir, "data.remus-incoming");
        Directory.CreateDirectory(Path.Combine(staging, "sub"));
        File.WriteAllText(Path.Combine(staging, "sub", "half"), "x");

        var result = _bed.Remus(["restore", "--volumes", dir, save]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("truncated", result.StderrText);
        Assert.False(Directory.Exists(staging), "the failed restore left its staging copy behind");
        Assert.Empty(_bed.List());
    }
}
