using System.Diagnostics;
using System.Globalization;
using Remus.Tests.Checkpoint;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// `remus protect --tcp` to `migrate-receive -r --tcp-listen` over TLS and over a pre-shared key: the primary VMM is
/// SIGKILLed while protected and the backup fails over; the combined console (both hosts share the console_log path)
/// has every counter once, in order, except at most one epoch re-emitted byte for byte — the same check as
/// <see cref="RemusFailoverCliTests"/>, here with the epochs and acks going through the protected stream (one
/// reader and one writer at once on each end).
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SecureFailoverCliTests : IDisposable
{
    private const int NonceCount = 3000, EpochMs = 50, Mib = 1;
    private static readonly TimeSpan NonceTick = TimeSpan.FromMilliseconds(2);

    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();
    private readonly TestPki _pki = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
        _pki.Dispose();
    }

    private string Details(Receiver receiver) => $"{receiver.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";

    [Theory]
    [InlineData("tls", 11)]
    [InlineData("psk", 12)]
    public void The_primary_VMM_killed_fails_over_with_no_gap(string mode, int seed)
    {
        var random = new Random(seed * 7919);
        string log = Path.Combine(_primary.Work, "failover.log");
        var args = string.Join(", ", NonceTicker.Args(NonceCount, NonceTick, Mib).Select(a => $"\"{a}\""));
        string config = _primary.Config("fo.toml", $"""
            name = "fo"
            memory = 32
            program = "{NonceTicker.Program}"
            args = [{args}]
            console_log = "{log}"
            """);
        // The backup may write the shared console_log: its folder is the one place this receiver allows.
        using var backup = Secure.Listen(_backup, remus: true, out int port,
            [.. Secure.Options(_pki, mode, receiver: true), "--allow-path", _primary.Work, "--allow-path", GuestBuilder.CacheDir]);

        int vmm = E2E.VmmPid(_primary.Ok("create", config));
        var protect = _primary.Remus(["protect", "-u", "-i", EpochMs.ToString(CultureInfo.InvariantCulture), "--tcp", $"127.0.0.1:{port}",
            .. Secure.Options(_pki, mode, receiver: false), "fo"], stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"remus protect over {mode} failed: {protect}\n{Details(backup)}");
        Assert.Contains("domain 'fo' is protected", protect.StdoutText);
        Assert.DoesNotContain("warning", protect.StderrText);
        var info = E2E.Single(_primary, "fo");
        Assert.True(info.Remus is { Protected: true }, $"not protected over {mode}\n{Details(backup)}");
        E2E.WaitUntil(() => E2E.Single(_primary, "fo").Remus is { Epochs: > 0 }, "the first checkpoint is acknowledged", details: () => Details(backup));

        int delay = random.Next(300, 1500);
        Thread.Sleep(delay);
        int atKill = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), $"the program ended before the kill (after a {delay} ms delay): make it run longer");
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
        Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the primary VMM {vmm} survived SIGKILL");

        backup.WaitForStderr("Remus failover for domain fo", TimeSpan.FromSeconds(30));
        int status = backup.WaitForExit(E2E.GuestPatience, () => $"console_log has {E2E.Lines(log)} lines\n{Details(backup)}");
        int maxRepeated = NonceTicker.LinesPerEpoch(TimeSpan.FromMilliseconds(EpochMs), NonceTick);
        NonceTicker.AssertReleasedOutput(E2E.ReadText(log), NonceCount, maxRepeated,
            $"{mode}, seed {seed}, killed after {delay} ms with {atKill} lines out\n{Details(backup)}");
        Assert.True(status == 0, $"the backup's domain (the ticker) ended with status {status}\n{Details(backup)}");
        Assert.Empty(_backup.DomainEntries());
    }
}
