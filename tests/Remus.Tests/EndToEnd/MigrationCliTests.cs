using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>A test that needs a real OpenSSH server (tests/Remus.Tests/Support/SshServer.cs); skipped without sshd.</summary>
public sealed class SshFactAttribute : FactAttribute
{
    public SshFactAttribute()
    {
        if (SshServer.Sshd is null)
            Skip = "sshd is not installed on this machine (apt-get install openssh-server; CI installs it), so migration over real ssh cannot be tested";
    }
}

/// <summary>
/// `remus migrate` through the real CLI between two "hosts" (two run directories): over `-s ''` (HOST is the
/// receiver command), over `--tcp` to a `migrate-receive --tcp-listen`, and over a real sshd. The ticker runs
/// throughout; its console_log must equal the native output at the end (no line lost, none repeated, none altered),
/// the domain must be gone from the source and run on the target; a dead target leaves it running at the source.
/// The migrations over TCP run on each platform this machine has (the target takes the platform the stream names);
/// the tests of the `-s`/ssh plumbing and of dead targets are about the channel and run once, on whatever the
/// machine picks, to keep the suite's time.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class MigrationCliTests : IDisposable
{
    // Long enough (6 s and more) to outlive a migration that starts a few CLI processes on a loaded 2-core machine.
    private const int Count = 300, Interval = 20, Mib = 2;

    private readonly DomainTestBed _source = new();
    private readonly DomainTestBed _target = new();

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
    }

    private string Log(string name) => Path.Combine(_source.Work, name + ".log");

    /// <summary>
    /// Creates the ticker at the source, migrates it with <paramref name="migrateArgs"/> (remus migrate ...) once it
    /// printed a few lines, and checks the result line, where the domain is, and the console at the end. Unless
    /// <paramref name="compress"/>, pages go uncompressed (-u), so the transports and the compression are covered
    /// by separate tests.
    /// </summary>
    private RunResult MigrateAndCompare(string name, string[] migrateArgs, Receiver? receiver = null,
        int count = Count, int interval = Interval, int mib = Mib, int memory = 32, bool compress = false,
        string? workingDirectory = null, IEnumerable<KeyValuePair<string, string>>? environment = null, PlatformKind? platform = null)
    {
        if (!compress) migrateArgs = ["-u", .. migrateArgs];
        var native = Ticker.NativeAsync(count, interval, mib);
        string log = Log(name);
        int sourceVmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, name, count, interval, mib, log, memory, platform)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 5, "the ticker printed 5 lines");

        var result = _source.Remus(["migrate", .. migrateArgs], stdin: null, timeout: TimeSpan.FromSeconds(90), workingDirectory, environment);
        int atReturn = E2E.Lines(log);
        string details() => $"{result}\n{receiver?.Describe()}\n{E2E.Logs(_source)}\n{E2E.Logs(_target)}";
        Assert.True(result.ExitCode == 0, "remus migrate failed:\n" + details());
        Assert.Matches($@"^migrated domain '{name}' to .*downtime [0-9.]+ ms\n$", result.StdoutText);
        Assert.True(atReturn <= count, $"the program had ended ({atReturn} lines) before the migration did: make it run longer\n{details()}");

        // Gone from the source: its VMM exits, nothing is listed or registered there.
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(sourceVmm), "the source VMM exits after the migration");
        Assert.Empty(_source.List());
        Assert.Empty(_source.DomainEntries());

        // Running at the target under the same name, in the target's run directory.
        var there = E2E.Single(_target, name);
        Assert.Equal(DomainRunState.Running, there.State);
        Assert.Equal(memory, there.Memory);
        if (receiver is not null) Assert.Equal(receiver.Pid, there.Pid); // the receiver became the domain's VMM
        E2E.WaitUntil(() => E2E.Lines(log) > atReturn, "the migrated program goes on printing", details: details);

        E2E.WaitForTheEnd(log, there.Pid, details);
        E2E.SameOutput(native.Result, E2E.ReadText(log), _source, _target);
        DomainTestBed.WaitUntil(() => _target.DomainEntries().Length == 0, "the migrated domain is unregistered at its end");
        if (receiver is not null) Assert.Equal(0, receiver.WaitForExit(TimeSpan.FromSeconds(30)));
        return result;
    }

    /// <summary>The receiver command for `-s ''`: what the brief's "HOST" is, run by /bin/sh.</summary>
    private string ReceiverCommand(string suffix = "") =>
        $"env REMUS_RUN_DIR='{_target.RunDir}' '{RemusCli.DotnetPath}' '{RemusCli.DllPath}' migrate-receive{suffix}";

    [Fact]
    public void Migrate_with_an_empty_s_runs_HOST_as_the_receiver_command()
    {
        MigrateAndCompare("plain", ["-s", "", "plain", ReceiverCommand()]);
    }

    /// <summary>
    /// The same path as the test above with the receiver's stderr sent to a file, which sidesteps the EPIPE bug: every
    /// other part of the `-s ''` channel (stdin/stdout stream, acks, hand-over, becoming the VMM) is checked here.
    /// </summary>
    [Fact]
    public void Migrate_with_an_empty_s_and_the_receivers_stderr_in_a_file()
    {
        string err = Path.Combine(_target.Work, "receiver.err");
        MigrateAndCompare("plain", ["-s", "", "plain", ReceiverCommand($" 2>>'{err}'")]);
        Assert.Contains("domain 'plain' arrived and runs here", E2E.ReadText(err));
    }

    /// <summary>A folder with an executable `./remus` in it (a script running this build's CLI), as a user would
    /// have in the checkout they run `./remus migrate` from.</summary>
    private string FolderWithRemus()
    {
        string folder = Path.Combine(_source.Work, "checkout");
        Directory.CreateDirectory(folder);
        string script = Path.Combine(folder, "remus");
        File.WriteAllText(script, $"#!/bin/sh\nexec '{RemusCli.DotnetPath}' '{RemusCli.DllPath}' \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return folder;
    }

    [Fact]
    public void Migrate_with_an_empty_s_runs_the_command_in_the_callers_directory_and_environment()
    {
        // ./remus exists only in the caller's folder, TARGET_RUN_DIR only in the caller's environment: the VMM (started
        // earlier, elsewhere, without it) must run the command as the caller would have (xl runs it itself).
        MigrateAndCompare("here", ["-s", "", "here", "REMUS_RUN_DIR=\"$TARGET_RUN_DIR\" ./remus migrate-receive"],
            workingDirectory: FolderWithRemus(), environment: [new("TARGET_RUN_DIR", _target.RunDir)]);
    }

    [Fact]
    public void A_receiver_command_that_dies_is_named_with_its_last_stderr_line()
    {
        string log = Log("lost");
        _source.Ok("create", Ticker.Config(_source, "lost", Count, Interval, Mib, log));
        E2E.WaitUntil(() => E2E.Lines(log) >= 2, "the ticker printed 2 lines");
        string empty = Path.Combine(_source.Work, "no-remus-here");
        Directory.CreateDirectory(empty);

        var migrate = _source.Remus(["migrate", "-s", "", "lost", $"REMUS_RUN_DIR='{_target.RunDir}' ./remus migrate-receive"],
            stdin: null, timeout: TimeSpan.FromSeconds(60), workingDirectory: empty);
        string line = E2E.OneLineFailure(migrate, "migrate to a command that is not there");
        Assert.StartsWith("remus: migration to ", line);
        Assert.EndsWith("(the receiver command exited with status 127: /bin/sh: 1: ./remus: not found)", line);

        var protect = _source.Remus(["protect", "-s", "", "lost", $"REMUS_RUN_DIR='{_target.RunDir}' ./remus migrate-receive -r"],
            stdin: null, timeout: TimeSpan.FromSeconds(60), workingDirectory: empty);
        line = E2E.OneLineFailure(protect, "protect to a command that is not there");
        Assert.StartsWith("remus: cannot protect domain 'lost': ", line);
        Assert.EndsWith("(the receiver command exited with status 127: /bin/sh: 1: ./remus: not found)", line);

        Assert.Equal(DomainRunState.Running, E2E.Single(_source, "lost").State); // still here, untouched
        Assert.Empty(_target.List());
        _source.Ok("destroy", "lost");
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Migrate_over_tcp_compressed(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var receiver = Receiver.Listen(_target, remus: false, out int port, "--allow-path", _source.Work);
        MigrateAndCompare("packed", ["--tcp", $"127.0.0.1:{port}", "--insecure", "packed"], receiver, compress: true, platform: platform);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Migrate_over_tcp_to_a_listening_receiver(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var receiver = Receiver.Listen(_target, remus: false, out int port, "--allow-path", _source.Work);
        var result = MigrateAndCompare("overtcp", ["--tcp", $"127.0.0.1:{port}", "--insecure", "overtcp"], receiver, platform: platform);
        Assert.Contains($"to tcp:127.0.0.1:{port}", result.StdoutText);
        Assert.Contains("round 0:", result.StderrText); // progress on stderr
        Assert.Contains("domain 'overtcp' arrived and runs here", receiver.Stderr);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Migrate_a_program_that_keeps_writing_32_MiB(PlatformKind platform)
    {
        Platforms.Require(platform);
        MigrateOfA32MiBWriter(compress: true, platform);
    }

    /// <summary>The 32 MiB writer again with `-u` (no XOR cache, so not hit by the compression bug); the dirty log of
    /// each platform is covered by the compressed one, so this runs once.</summary>
    [Fact]
    public void Migrate_a_program_that_keeps_writing_32_MiB_uncompressed()
    {
        MigrateOfA32MiBWriter(compress: false, platform: null);
    }

    private void MigrateOfA32MiBWriter(bool compress, PlatformKind? platform)
    {
        // Each tick rewrites 1/8 of 32 MiB (1024 pages) every ~10 ms: more than a pre-copy round can send, so the
        // migration either converges or ends with a stop-and-copy round.
        using var receiver = Receiver.Listen(_target, remus: false, out int port, "--allow-path", _source.Work);
        var result = MigrateAndCompare("big", ["--tcp", $"127.0.0.1:{port}", "--insecure", "big"], receiver, count: 300, interval: 5, mib: 32, memory: 128, compress: compress, platform: platform);
        Assert.Matches(@"round \d+: .*(stop and copy|, 0 dirtied meanwhile)", result.StderrText);
    }

    [Theory]
    [InlineData("command-exits-at-once")]
    [InlineData("closed-port")]
    public void Migration_to_a_dead_target_fails_with_one_line_and_the_domain_runs_on_at_the_source(string target)
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Log("stay");
        int vmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, "stay", Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 5, "the ticker printed 5 lines");

        string[] args = target == "closed-port" ? ["--tcp", $"127.0.0.1:{E2E.FreePort()}", "--insecure", "stay"] : ["-s", "", "stay", "true"];
        var result = _source.Remus(["migrate", .. args], stdin: null, timeout: TimeSpan.FromSeconds(60));

        string line = E2E.OneLineFailure(result, $"remus migrate {string.Join(' ', args)}");
        Assert.DoesNotContain("after the hand-over", line);
        int atFailure = E2E.Lines(log);
        Assert.True(atFailure <= Count, $"the program had ended ({atFailure} lines) when the migration failed: make it run longer");

        // Still here, same VMM, running, printing.
        var info = E2E.Single(_source, "stay");
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        E2E.WaitUntil(() => E2E.Lines(log) > atFailure, "the program goes on printing at the source");
        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_source));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _source);
        Assert.Empty(_target.List());
    }

    [SshFact]
    public void Migrate_over_real_ssh()
    {
        using var ssh = new SshServer(_target.RunDir);
        // ssh's handshake and the remote dotnet start make this the slowest channel: a longer run keeps the program
        // running until the domain is checked on the target.
        MigrateAndCompare("viassh", ["-s", ssh.SshCommand, "viassh", ssh.Host], count: 300);
    }
}
