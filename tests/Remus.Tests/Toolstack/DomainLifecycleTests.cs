using System.Text;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// End to end through the real CLI: `remus create` (detached VMM processes), list, pause, unpause, rename, destroy,
/// console, create -F and -p, each test with a run directory of its own.
/// </summary>
public sealed class DomainLifecycleTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private string TickerConfig(string name, string log = "console.log") =>
        _bed.Config($"{name}.toml", $"""
            name = "{name}"
            memory = 32
            program = "{ToolstackGuests.Build("ticker", ToolstackGuests.Ticker)}"
            args = ["20"]
            console_log = "{log}"
            """);

    private int Lines(string log) => _bed.ReadLog(log).Count(c => c == '\n');

    [Fact]
    public void Create_list_pause_unpause_rename_destroy()
    {
        var created = _bed.Ok("create", TickerConfig("web"));
        Assert.Contains("web", created.StdoutText);

        var web = _bed.Domain("web");
        Assert.Equal(DomainRunState.Running, web.State);
        Assert.Equal(32, web.Memory);
        Assert.True(web.Id > 0);
        Assert.True(DomainTestBed.ProcessExists(web.Pid), $"VMM pid {web.Pid} is not running");
        Assert.NotEqual(Environment.ProcessId, web.Pid);
        DomainTestBed.WaitUntil(() => Lines("console.log") > 3, "the program writes to console_log");

        _bed.Ok("pause", "web");
        Assert.Equal(DomainRunState.Paused, _bed.Domain("web").State);
        var paused = Lines("console.log");
        Thread.Sleep(300);
        Assert.Equal(paused, Lines("console.log"));

        _bed.Ok("unpause", web.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(DomainRunState.Running, _bed.Domain("web").State);
        DomainTestBed.WaitUntil(() => Lines("console.log") > paused, "the program goes on after unpause");

        _bed.Ok("rename", "web", "www");
        var www = _bed.Domain("www");
        Assert.Equal(web.Id, www.Id);
        Assert.Equal(web.Pid, www.Pid);
        Assert.Contains("no domain named 'web'", _bed.Fails("pause", "web"));

        _bed.Ok("destroy", "www");
        Assert.Empty(_bed.List());
        Assert.Empty(_bed.DomainEntries());
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(web.Pid), "the VMM process exits");
        var vmmLog = File.ReadAllText(Path.Combine(_bed.RunDir, "logs", $"{web.Id}.log"));
        Assert.Contains("program exited with status 137", vmmLog);
    }

    [Fact]
    public void Create_paused_loads_but_does_not_run_until_unpaused()
    {
        _bed.Ok("create", "-p", TickerConfig("later"));
        Assert.Equal(DomainRunState.Paused, _bed.Domain("later").State);
        Thread.Sleep(300);
        Assert.Equal("", _bed.ReadLog("console.log"));

        _bed.Ok("unpause", "later");
        DomainTestBed.WaitUntil(() => _bed.ReadLog("console.log").StartsWith("tick 0\n", StringComparison.Ordinal), "the program starts");
        _bed.Ok("destroy", "later");
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void Destroy_works_on_paused_and_never_started_domains()
    {
        _bed.Ok("create", "-p", TickerConfig("never"));
        _bed.Ok("create", TickerConfig("stopped", "stopped.log"));
        _bed.Ok("pause", "stopped");
        _bed.Ok("destroy", "never");
        _bed.Ok("destroy", "stopped");
        Assert.Empty(_bed.List());
        Assert.Empty(_bed.DomainEntries());
    }

    [Fact]
    public void Duplicate_names_are_refused()
    {
        _bed.Ok("create", TickerConfig("one"));
        var error = _bed.Fails("create", TickerConfig("one", "other.log"));
        Assert.Contains("'one' is already in use", error);
        Assert.Single(_bed.List());

        _bed.Ok("create", TickerConfig("two", "two.log"));
        Assert.Contains("'one' is already in use", _bed.Fails("rename", "two", "one"));
        Assert.Equal(["one", "two"], _bed.List().Select(d => d.Name).Order());
        Assert.Contains("invalid domain name", _bed.Fails("rename", "two", "bad name"));
    }

    [Fact]
    public async Task Concurrent_creates_of_one_name_let_exactly_one_win()
    {
        var configs = Enumerable.Range(0, 3).Select(i => TickerConfig("race", $"race{i}.log")).ToList();
        var results = await Task.WhenAll(configs.Select(c => Task.Run(() => _bed.Remus("create", c))));
        Assert.Single(results, r => r.ExitCode == 0);
        foreach (var loser in results.Where(r => r.ExitCode != 0))
            Assert.Contains("'race' is already in use", loser.StderrText);
        Assert.Single(_bed.List());
        Assert.Equal(2, _bed.DomainEntries().Length);
    }

    [Fact]
    public void Ids_increase_and_are_not_reused()
    {
        _bed.Ok("create", TickerConfig("a"));
        var first = _bed.Domain("a").Id;
        _bed.Ok("destroy", "a");
        _bed.Ok("create", TickerConfig("a"));
        Assert.Equal(first + 1, _bed.Domain("a").Id);
    }

    [Theory]
    [InlineData("missing-program")]
    [InlineData("not-elf")]
    [InlineData("malformed")]
    [InlineData("unknown-key")]
    [InlineData("bad-console-log")]
    public void A_bad_config_or_program_fails_with_one_line_and_leaves_nothing_behind(string problem)
    {
        var notElf = Path.Combine(_bed.Work, "script.sh");
        File.WriteAllText(notElf, "#!/bin/sh\necho hi\n");
        var ticker = ToolstackGuests.Build("ticker", ToolstackGuests.Ticker);
        var toml = problem switch
        {
            "missing-program" => "name = \"bad\"\nprogram = \"no-such-program\"\nconsole_log = \"bad.log\"\n",
            "not-elf" => $"name = \"bad\"\nprogram = \"{notElf}\"\nconsole_log = \"bad.log\"\n",
            "malformed" => $"name = \"bad\"\nprogram = \"{ticker}\nconsole_log = \"bad.log\"\n",
            "unknown-key" => $"name = \"bad\"\nprogram = \"{ticker}\"\nvcpus = 2\n",
            "bad-console-log" => $"name = \"bad\"\nprogram = \"{ticker}\"\nconsole_log = \"no/such/dir/bad.log\"\n",
            _ => throw new ArgumentOutOfRangeException(nameof(problem)),
        };
        var error = _bed.Fails("create", _bed.Config("bad.toml", toml));
        Assert.DoesNotContain("   at ", error);

        Assert.Empty(_bed.DomainEntries());
        Assert.Empty(_bed.ProcessesOfThisRunDir());
        Assert.False(File.Exists(Path.Combine(_bed.Work, "bad.log")), "console_log left behind");
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void Console_log_receives_stdout_and_stderr_in_order_and_the_domain_goes_away_at_exit()
    {
        var streams = ToolstackGuests.Build("streams", ToolstackGuests.Streams);
        var config = _bed.Config("s.toml", $"name = \"s\"\nprogram = \"{streams}\"\nargs = [\"5\", \"6\"]\nconsole_log = \"s.log\"\n");
        _bed.Ok("create", config);
        DomainTestBed.WaitUntil(() => _bed.List().Count == 0, "the domain is removed when its program exits");
        Assert.Equal("out 1\nerr 2\nout 3\nerr 4\nout 5\nerr 6\n", _bed.ReadLog("s.log"));
        Assert.Empty(_bed.DomainEntries());
        DomainTestBed.WaitUntil(() => _bed.ProcessesOfThisRunDir().Count == 0, "the VMM exits");
        var vmmLog = string.Concat(Directory.GetFiles(Path.Combine(_bed.RunDir, "logs")).Select(File.ReadAllText));
        Assert.Contains("program exited with status 5", vmmLog);

        // console_log is appended to, not replaced.
        _bed.Ok("create", config);
        DomainTestBed.WaitUntil(() => _bed.List().Count == 0, "the second run ends");
        Assert.Equal("out 1\nerr 2\nout 3\nerr 4\nout 5\nerr 6\n" + "out 1\nerr 2\nout 3\nerr 4\nout 5\nerr 6\n", _bed.ReadLog("s.log"));
    }

    [Fact]
    public void Console_replays_output_forwards_stdin_and_ends_with_the_exit_status()
    {
        var echoer = ToolstackGuests.Build("echoer", ToolstackGuests.Echoer);
        _bed.Ok("create", _bed.Config("e.toml", $"name = \"e\"\nprogram = \"{echoer}\"\nconsole_log = \"e.log\"\n"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog("e.log") == "ready\n", "the program is ready");

        var console = _bed.Remus(["console", "e"], Encoding.UTF8.GetBytes("hello\nquit\n"));

        Assert.Equal(7, console.ExitCode);
        Assert.Equal("ready\ngot: hello\nbye\n", console.StdoutText);
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void Console_of_an_unknown_domain_is_an_error()
    {
        Assert.Equal("remus: no domain named 'ghost' (see 'remus list')", _bed.Fails("console", "ghost"));
        Assert.Contains("no domain named '42'", _bed.Fails("destroy", "42"));
    }

    [Fact]
    public void Create_foreground_runs_in_this_process_with_the_console_attached()
    {
        var echoer = ToolstackGuests.Build("echoer", ToolstackGuests.Echoer);
        var config = _bed.Config("f.toml", $"name = \"f\"\nprogram = \"{echoer}\"\nconsole_log = \"f.log\"\n");

        var result = _bed.Remus(["create", "-F", config], Encoding.UTF8.GetBytes("one\ntwo\nquit\n"));

        Assert.Equal(7, result.ExitCode);
        Assert.Equal("ready\ngot: one\ngot: two\nbye\n", result.StdoutText);
        Assert.Equal("ready\ngot: one\ngot: two\nbye\n", _bed.ReadLog("f.log"));
        Assert.Empty(_bed.List());
        Assert.Empty(_bed.DomainEntries());
    }

    [Fact]
    public void Create_foreground_stdin_end_is_the_program_input_end()
    {
        var echoer = ToolstackGuests.Build("echoer", ToolstackGuests.Echoer);
        var result = _bed.Remus(["create", "-F", _bed.Config("f.toml", $"name = \"f\"\nprogram = \"{echoer}\"\n")], Encoding.UTF8.GetBytes("x\n"));
        Assert.Equal(3, result.ExitCode);
        Assert.Equal("ready\ngot: x\n", result.StdoutText);
    }

    [Fact]
    public void A_killed_vmm_leaves_a_stale_entry_that_is_cleaned_up_silently()
    {
        _bed.Ok("create", TickerConfig("doomed"));
        var doomed = _bed.Domain("doomed");
        System.Diagnostics.Process.GetProcessById(doomed.Pid).Kill(); // SIGKILL: no chance to clean up
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(doomed.Pid), "the VMM is dead");
        Assert.Contains($"{doomed.Id}.sock", _bed.DomainEntries());

        var list = _bed.Remus("list");
        Assert.Equal(0, list.ExitCode);
        Assert.Empty(list.StderrText);
        Assert.DoesNotContain("doomed", list.StdoutText);
        Assert.Empty(_bed.DomainEntries());

        _bed.Ok("create", TickerConfig("doomed"));
        Assert.Equal(DomainRunState.Running, _bed.Domain("doomed").State);
    }

    [Fact]
    public void List_prints_a_table()
    {
        _bed.Ok("create", TickerConfig("tab"));
        var table = _bed.Ok("list").StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\s*Name\s+ID\s+PID\s+Mem\s+State\s+Time\(s\)\s*$", table[0]);
        Assert.Matches(@"^\s*tab\s+\d+\s+\d+\s+32\s+running\s+\d+\.\d\s*$", table[1]);
    }
}
