using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>Skipped unless this runs as root with setpriv(1) at hand (the tests drop to uid 65534 with it).</summary>
public sealed class RootWithSetprivFactAttribute : FactAttribute
{
    public RootWithSetprivFactAttribute()
    {
        if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root" && !IsRoot())
            Skip = "needs root (to run the CLI as another user with setpriv)";
        else if (ProcessRunner.FindOnPath("setpriv") is null)
            Skip = "setpriv (util-linux) is not installed";
    }

    private static bool IsRoot() => File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t')[1] == "0");
}

/// <summary>
/// Item 3 of issue 13: the run directory remus makes and the folder of the control sockets are private to their user
/// (0700: another user can neither list the domains nor connect to a VMM's control socket), and a user who is not the
/// run directory's owner (here uid 65534, through setpriv) gets one clear line and a failure status for every
/// command — nothing made: no registry entry, no log, no VMM, no console_log.
/// </summary>
[Collection(EndToEndCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SecureRunDirectoryTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode GroupOrOther = (UnixFileMode)0b000_111_111;

    private readonly DomainTestBed _host = new();

    public void Dispose() => _host.Dispose();

    /// <summary>A run directory that does not exist yet, under the test bed's (so that it is removed with it).</summary>
    private string FreshRunDir() => Path.Combine(_host.RunDir, "run");

    [RootWithSetprivFact]
    public void The_run_directory_and_the_control_sockets_are_0700_and_another_user_cannot_reach_them()
    {
        string run = FreshRunDir();
        string log = Path.Combine(_host.Work, "private.log");
        string config = Ticker.Config(_host, "private", 600, 20, 1, log);
        var env = new KeyValuePair<string, string>[] { new("REMUS_RUN_DIR", run) };
        var created = _host.Remus(["create", config], stdin: null, environment: env);
        Assert.True(created.ExitCode == 0, $"create: {created}");
        try
        {
            foreach (var dir in new[] { run, Path.Combine(run, "domains"), Path.Combine(run, "logs") })
            {
                var mode = File.GetUnixFileMode(dir);
                Assert.True((mode & GroupOrOther) == 0 && (mode & Private) == Private, $"{dir} is {Convert.ToString((int)mode, 8)}, want 700");
            }
            string[] sockets = Directory.GetFiles(Path.Combine(run, "domains"), "*.sock");
            Assert.Single(sockets);

            // uid 65534 can neither list the folder nor connect to the socket (a shell cannot connect to a Unix socket:
            // python can; without python the directory modes above are the check).
            var listing = AsNobody(["/bin/ls", Path.Combine(run, "domains")], run);
            Assert.True(listing.ExitCode != 0, $"uid 65534 listed the domains: {listing}");
            if (new[] { "/usr/bin/python3", "/usr/local/bin/python3" }.FirstOrDefault(File.Exists) is { } python) // not a shim under /root
            {
                var connect = AsNobody([python, "-c",
                    $"import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect('{sockets[0]}')\nexcept PermissionError:\n sys.exit(13)\nsys.exit(0)"], run);
                Assert.True(connect.ExitCode == 13, $"uid 65534 could connect to {sockets[0]}: {connect}");
            }
        }
        finally
        {
            _host.Remus(["destroy", "private"], stdin: null, environment: env);
        }
    }

    [RootWithSetprivFact]
    public void A_user_who_does_not_own_the_run_directory_gets_one_line_and_nothing_is_made()
    {
        _host.Ok("list"); // root makes the run directory: as /run/remus would be
        string log = Path.Combine(_host.Work, "nobody.log");
        string config = Ticker.Config(_host, "nobody", 50, 20, 1, log);
        string[] before = Secure.Tree(_host.RunDir);
        foreach (string[] args in new[] { new[] { "create", config }, ["run", Ticker.Program, .. Ticker.Args(5, 10, 1)], ["list"],
                     ["migrate-receive", "--tcp-listen", $"127.0.0.1:{E2E.FreePort()}", "--insecure"] })
        {
            var result = AsNobody([RemusCli.DotnetPath, RemusCli.DllPath, .. args], _host.RunDir);
            string line = E2E.OneLineFailure(result, $"remus {args[0]} as uid 65534 in root's run directory");
            Assert.Contains($"the run directory '{_host.RunDir}' belongs to root", line);
            Assert.Contains("REMUS_RUN_DIR", line);
        }
        Assert.Equal(before, Secure.Tree(_host.RunDir));
        Assert.False(File.Exists(log));
        Assert.Empty(_host.List());
        Assert.Empty(_host.ProcessesOfThisRunDir());
    }

    /// <summary>Runs a command as uid/gid 65534 with no supplementary groups, REMUS_RUN_DIR=<paramref name="runDir"/>.</summary>
    private static RunResult AsNobody(IReadOnlyList<string> command, string runDir) =>
        ProcessRunner.Run(ProcessRunner.FindOnPath("setpriv")!, ["--reuid=65534", "--regid=65534", "--clear-groups", .. command], stdin: null,
            TimeSpan.FromSeconds(60), extraEnvironment: [new("REMUS_RUN_DIR", runDir), new("HOME", "/tmp"), new("DOTNET_CLI_HOME", "/tmp")],
            workingDirectory: "/tmp");
}
