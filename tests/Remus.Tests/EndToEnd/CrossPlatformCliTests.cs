using System.Diagnostics;
using System.Text;
using Remus.Sandbox.Platform;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Platform-neutral checkpoints through the real CLI (issue 7 item 4): each side picks its platform with
/// REMUS_PLATFORM in its own environment, as two hosts would; the domain's config says auto. A save taken on one
/// platform restores on the other, a live migration and a Remus failover cross platforms, the ticker's output has no
/// gap and no rollback, and the receiving VMM's log says that the checkpoint came from the other platform.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class CrossPlatformCliTests(ITestOutputHelper output) : IDisposable
{
    private const int Count = 300, Interval = 20, Mib = 2;

    private readonly DomainTestBed _a = new();
    private readonly DomainTestBed _b = new();

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    private static string Name(PlatformKind p) => PlatformSelection.NameOf(p);

    private static KeyValuePair<string, string>[] On(PlatformKind p) => [new(PlatformSelection.EnvironmentVariable, Name(p))];

    private RunResult Ok(DomainTestBed host, PlatformKind platform, params string[] args)
    {
        var r = host.Remus(args, stdin: null, timeout: TimeSpan.FromSeconds(90), environment: On(platform));
        Assert.True(r.ExitCode == 0, $"REMUS_PLATFORM={Name(platform)} remus {string.Join(' ', args)}: {r}\n{E2E.Logs(_a)}\n{E2E.Logs(_b)}");
        return r;
    }

    /// <summary>The receiving VMM's log names its own platform and the source's.</summary>
    private static void AssertLogSaysCrossed(DomainTestBed host, PlatformKind from, PlatformKind to)
    {
        string logs = E2E.Logs(host);
        Assert.Contains($" platform: {Name(to)} (forced by REMUS_PLATFORM={Name(to)}", logs);
        Assert.Contains($" the checkpoint was taken on {Name(from)}; the domain goes on here on {Name(to)} (checkpoints are platform-neutral)", logs);
    }

    [CrossPlatformTheory(Cli = true)]
    [MemberData(nameof(CrossPlatform.Directions), MemberType = typeof(CrossPlatform))]
    public void A_save_taken_on_one_platform_restores_on_the_other(PlatformKind from, PlatformKind to)
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_a.Work, "s.log"), file = Path.Combine(_a.Work, "s.sav");
        int first = E2E.VmmPid(Ok(_a, from, "create", Ticker.Config(_a, "s", Count, Interval, Mib, log)));
        Assert.Contains($" platform: {Name(from)} (forced by REMUS_PLATFORM={Name(from)}", E2E.Logs(_a));
        E2E.WaitUntil(() => E2E.Lines(log) >= 10, "the ticker printed 10 lines");
        Ok(_a, from, "save", "s", file);
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(first), "the saved domain's VMM exits");
        Assert.True(E2E.Lines(log) < Count, "the program had ended before the save: make it run longer");

        var sw = Stopwatch.StartNew();
        int vmm = E2E.VmmPid(Ok(_b, to, "restore", file));
        output.WriteLine($"remus restore {Name(from)} -> {Name(to)}: {sw.Elapsed.TotalMilliseconds:F0} ms (CLI and VMM start included)");
        AssertLogSaysCrossed(_b, from, to);
        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_b));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _a, _b);
    }

    [CrossPlatformFact(FromPtrace = true, Cli = true)]
    public void A_live_migration_crosses_from_ptrace_to_KVM() => Migrate(PlatformKind.Ptrace, PlatformKind.Kvm);

    [CrossPlatformFact(Cli = true)]
    public void A_live_migration_crosses_from_KVM_to_ptrace() => Migrate(PlatformKind.Kvm, PlatformKind.Ptrace);

    private void Migrate(PlatformKind from, PlatformKind to)
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_a.Work, "m.log");
        E2E.VmmPid(Ok(_a, from, "create", Ticker.Config(_a, "m", Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 5, "the ticker printed 5 lines");

        string receiver = $"env {PlatformSelection.EnvironmentVariable}={Name(to)} REMUS_RUN_DIR='{_b.RunDir}' " +
                          $"'{RemusCli.DotnetPath}' '{RemusCli.DllPath}' migrate-receive 2>>'{Path.Combine(_b.Work, "receiver.err")}'";
        var result = Ok(_a, from, "migrate", "-s", "", "m", receiver);
        output.WriteLine($"{Name(from)} -> {Name(to)}: {result.StdoutText.Trim()}");
        Assert.Matches(@"^migrated domain 'm' to .*downtime [0-9.]+ ms\n$", result.StdoutText);

        var there = E2E.Single(_b, "m");
        AssertLogSaysCrossed(_b, from, to);
        E2E.WaitForTheEnd(log, there.Pid, () => E2E.Logs(_b));
        E2E.SameOutput(native.Result, E2E.ReadText(log), _a, _b);
    }

    /// <summary>
    /// The primary runs on one platform, its Remus backup (migrate-receive -r over TCP) on the other; the primary's
    /// VMM is SIGKILLed once checkpoints flow, the backup fails over onto its own platform. The combined console (one
    /// console_log path for both hosts) has every ticker line in order, at most one epoch's lines twice.
    /// </summary>
    [CrossPlatformFact(FromPtrace = true, Cli = true)]
    public void A_Remus_backup_on_KVM_takes_over_from_a_ptrace_primary_with_no_gap() => Failover(PlatformKind.Ptrace, PlatformKind.Kvm);

    [CrossPlatformFact(Cli = true)]
    public void A_Remus_backup_on_ptrace_takes_over_from_a_KVM_primary_with_no_gap() => Failover(PlatformKind.Kvm, PlatformKind.Ptrace);

    private void Failover(PlatformKind from, PlatformKind to)
    {
        const int count = 600, interval = 10;
        var native = Ticker.NativeAsync(count, interval, 1);
        string log = Path.Combine(_a.Work, "r.log");
        using var backup = BackupProcess.Listen(_b, to, "--allow-path", _a.Work, "--allow-path", GuestBuilder.CacheDir); // the shared console_log, the program
        int vmm = E2E.VmmPid(Ok(_a, from, "create", Ticker.Config(_a, "r", count, interval, 1, log)));
        Ok(_a, from, "protect", "-i", "50", "--tcp", $"127.0.0.1:{backup.Port}", "--insecure", "r");
        E2E.WaitUntil(() => E2E.Lines(log) >= 60, "the protected ticker's output is released", details: backup.Describe);
        Assert.False(E2E.EndsWithDone(log), "the program ended before the kill: make it run longer");

        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the primary VMM {vmm} survived SIGKILL");
        backup.WaitForStderr("Remus failover for domain r", TimeSpan.FromSeconds(30));
        Assert.True(backup.WaitForExit(E2E.GuestPatience), $"the backup did not finish\n{backup.Describe()}\n{E2E.Logs(_b)}");
        AssertLogSaysCrossed(_b, from, to);

        int repeated = Continuity.AssertNoGapAtMostOneEpochRepeated(native.Result, E2E.ReadText(log));
        output.WriteLine($"{Name(from)} -> {Name(to)}: {repeated} lines re-emitted at the failover");
        Assert.Equal(0, backup.ExitCode);
    }

    /// <summary>`remus migrate-receive -r --tcp-listen 127.0.0.1:PORT --insecure [--allow-path DIR]` with REMUS_PLATFORM set for it alone; killed by
    /// its own pid on dispose if it still runs.</summary>
    private sealed class BackupProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stderr = new();

        private BackupProcess(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }
        public int ExitCode => _process.ExitCode;

        public static BackupProcess Listen(DomainTestBed host, PlatformKind platform, params string[] allow)
        {
            int port = E2E.FreePort();
            var psi = new ProcessStartInfo(RemusCli.DotnetPath)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (string a in (string[])[RemusCli.DllPath, "migrate-receive", "-r", "--tcp-listen", $"127.0.0.1:{port}", "--insecure", .. allow]) psi.ArgumentList.Add(a);
            psi.Environment["REMUS_RUN_DIR"] = host.RunDir;
            psi.Environment[PlatformSelection.EnvironmentVariable] = PlatformSelection.NameOf(platform);
            var process = new Process { StartInfo = psi };
            var backup = new BackupProcess(process, port);
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (backup._stderr) backup._stderr.Append(e.Data).Append('\n'); };
            process.OutputDataReceived += (_, _) => { };
            process.Start();
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            process.StandardInput.Close();
            backup.WaitForStderr("waiting for a", TimeSpan.FromSeconds(30));
            return backup;
        }

        private string Stderr
        {
            get { lock (_stderr) return _stderr.ToString(); }
        }

        public void WaitForStderr(string text, TimeSpan timeout) =>
            E2E.WaitUntil(() => Stderr.Contains(text, StringComparison.Ordinal), $"the backup says '{text}'", timeout, Describe);

        public bool WaitForExit(TimeSpan timeout)
        {
            if (!_process.WaitForExit(timeout)) return false;
            _process.WaitForExit();
            return true;
        }

        public string Describe() =>
            $"backup {(_process.HasExited ? $"exited {_process.ExitCode}" : "running")}\n--- backup stderr ---\n{Stderr}";

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: false);
                    _process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }
}
