using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// `remus migrate --tcp` to `migrate-receive --tcp-listen` over TLS (mutual certificates of one private CA) and over a
/// pre-shared key, through the real CLI between two run directories: the ticker continues at the target with no
/// line lost, none repeated, none altered. The PSK migration goes through a relay that records what the sender sent:
/// that recording, replayed to a new receiver with the same key, must be refused with nothing created (the new
/// session's nonces differ, so the recorded key proof does not hold). And a TCP receiver with no protection chosen
/// refuses to start.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SecureMigrationCliTests : IDisposable
{
    private const int Count = 300, Interval = 20, Mib = 2;

    /// <summary>The ticker's console_log is in the source's work folder (both "hosts" are this machine): the one host
    /// path a receiver here must allow (a TCP receiver allows none by default).</summary>
    private string[] AllowSource => ["--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir];

    private readonly DomainTestBed _source = new();
    private readonly DomainTestBed _target = new();
    private readonly TestPki _pki = new();

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
        _pki.Dispose();
    }

    /// <summary>Creates the ticker at the source, migrates it with `migrate -u ARGS NAME` once it printed 5 lines,
    /// and checks where it runs and that its console at the end equals the native output.</summary>
    private void MigrateAndCompare(string name, string[] channel, int port, Receiver receiver)
    {
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_source.Work, name + ".log");
        int sourceVmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, name, Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 5, "the ticker printed 5 lines");

        var result = _source.Remus(["migrate", "-u", "--tcp", $"127.0.0.1:{port}", .. channel, name], stdin: null, timeout: TimeSpan.FromSeconds(90));
        int atReturn = E2E.Lines(log);
        string details() => $"{result}\n{receiver.Describe()}\n{E2E.Logs(_source)}\n{E2E.Logs(_target)}";
        Assert.True(result.ExitCode == 0, "remus migrate failed:\n" + details());
        Assert.Matches($@"^migrated domain '{name}' to .*downtime [0-9.]+ ms\n$", result.StdoutText);
        Assert.DoesNotContain("warning", result.StderrText); // a protected channel: no --insecure warning
        Assert.True(atReturn <= Count, $"the program had ended ({atReturn} lines) before the migration did: make it run longer\n{details()}");

        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(sourceVmm), "the source VMM exits after the migration");
        Assert.Empty(_source.List());
        var there = E2E.Single(_target, name);
        Assert.Equal(DomainRunState.Running, there.State);
        Assert.Equal(receiver.Pid, there.Pid);
        E2E.WaitUntil(() => E2E.Lines(log) > atReturn, "the migrated program goes on printing", details: details);
        E2E.WaitForTheEnd(log, there.Pid, details);
        E2E.SameOutput(native.Result, E2E.ReadText(log), _source, _target);
        Assert.Equal(0, receiver.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Contains($"domain '{name}' arrived and runs here", receiver.Stderr);
        Assert.DoesNotContain("warning", receiver.Stderr);
    }

    [Fact]
    public void Migrate_over_tls_continues_the_ticker_with_no_gap()
    {
        using var receiver = Secure.Listen(_target, remus: false, out int port, [.. Secure.Tls(_pki, _pki.HostB), .. AllowSource]);
        MigrateAndCompare("viatls", Secure.Tls(_pki, _pki.HostA), port, receiver);
    }

    [Fact]
    public void Migrate_over_psk_continues_the_ticker_and_the_recorded_session_replayed_is_refused()
    {
        byte[] recorded;
        using (var receiver = Secure.Listen(_target, remus: false, out int port, [.. Secure.Psk(_pki.PskFile), .. AllowSource]))
        using (var relay = new RecordingRelay(port))
        {
            MigrateAndCompare("viapsk", Secure.Psk(_pki.PskFile), relay.Port, receiver);
            recorded = relay.Recorded(TimeSpan.FromSeconds(30));
        }
        Assert.True(recorded.Length > 1 << 20, $"the relay recorded only {recorded.Length} bytes of a 2 MiB migration");
        // The recording is ciphertext: the ticker's config (its name and console_log path) is not in it in the clear.
        Assert.True(recorded.AsSpan().IndexOf("viapsk.log"u8) < 0, "the console_log path travels in the clear over PSK");

        // Replayed, byte for byte, to a new receiver with the same key on a fresh host: refused, nothing made.
        using var fresh = new DomainTestBed();
        string[] before = Secure.Tree(fresh.Work);
        using var replayTarget = Secure.Listen(fresh, remus: false, out int freshPort, Secure.Psk(_pki.PskFile));
        Secure.SendPlain(freshPort, recorded);
        string line = Secure.Refusal(replayTarget);
        Assert.DoesNotContain("refused: the stream asks for", line); // refused at the key proof, before any record
        Secure.NothingCreated(fresh, replayTarget, before);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_tcp_receiver_with_neither_protection_nor_insecure_refuses_to_start(bool remus)
    {
        var result = _target.Remus([.. "migrate-receive".Split(' '), .. remus ? new[] { "-r" } : [], "--tcp-listen", $"127.0.0.1:{E2E.FreePort()}"],
            stdin: null, timeout: TimeSpan.FromSeconds(30),
            environment: [new("REMUS_HOST_CONFIG", Path.Combine(_target.Work, "no-host.toml"))]);
        string line = E2E.OneLineFailure(result, "migrate-receive --tcp-listen without protection");
        Assert.Contains("--tls-cert", line);
        Assert.Contains("--psk-file", line);
        Assert.Contains("--insecure", line);
        Assert.Empty(_target.List());
        Assert.Empty(_target.DomainEntries());
    }
}
