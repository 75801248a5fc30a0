using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Streams a protected receiver must refuse, through the real CLI: a plain TCP peer sending a valid recorded stream
/// (a save file), a sender whose certificate comes from another CA, a sender with another pre-shared key, and a
/// sender with the right key whose domain config names a host path outside the receiver's --allow-path. Each is
/// refused with one line at the receiver and nothing is created there: no NAME or NAME--incoming in `remus list`, no
/// registry entry, no VMM log, no console_log, nothing new in its folders. Where the peer is a real `remus migrate`,
/// it fails with one line and the domain runs on at the source. The receivers in the channel tests allow the
/// source's folder, so that the channel alone stands between the stream and a domain built from it.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SecureRefusalCliTests : IDisposable
{
    private const int Count = 300, Interval = 20, Mib = 2;

    private readonly DomainTestBed _source = new();
    private readonly DomainTestBed _target = new();
    private readonly TestPki _pki = new();

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
        _pki.Dispose();
    }

    /// <summary>A valid checkpoint stream of the ticker, as `remus save` writes it; its console_log removed afterwards,
    /// so that a receiver that built the domain would make it again.</summary>
    private (byte[] Stream, string ConsoleLog) RecordedStream()
    {
        string log = Path.Combine(_source.Work, "recorded.log");
        _source.Ok("create", Ticker.Config(_source, "rec", Count, Interval, Mib, log));
        E2E.WaitUntil(() => E2E.Lines(log) >= 3, "the ticker printed 3 lines");
        string file = Path.Combine(_source.Work, "rec.save");
        _source.Ok("save", "rec", file);
        DomainTestBed.WaitUntil(() => _source.List().Count == 0, "the saved domain is gone");
        byte[] stream = File.ReadAllBytes(file);
        File.Delete(file);
        File.Delete(log);
        return (stream, log);
    }

    [Theory]
    [InlineData("tls", false)]
    [InlineData("psk", false)]
    [InlineData("tls", true)]
    [InlineData("psk", true)]
    public void A_plain_tcp_peer_sending_a_recorded_valid_stream_is_refused(string mode, bool remus)
    {
        var (stream, log) = RecordedStream();
        string[] before = Secure.Tree(_target.Work);
        using var receiver = Secure.Listen(_target, remus, out int port, [.. Secure.Options(_pki, mode, receiver: true), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir]);
        Secure.SendPlain(port, stream);
        Secure.Refusal(receiver);
        Secure.NothingCreated(_target, receiver, before, log);
    }

    /// <summary>A real `remus migrate` whose channel the receiver refuses: it fails with one line, and the domain runs
    /// on at the source; the receiver refused with one line and made nothing. Returns (sender's line, receiver's line).</summary>
    private (string Sender, string Receiver) MigrationRefused(string[] receiverOptions, string[] senderOptions, string name,
        Action<string>? checkConsole = null)
    {
        string log = Path.Combine(_source.Work, name + ".log");
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        int vmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, name, Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 3, "the ticker printed 3 lines");
        string[] before = Secure.Tree(_target.Work);
        using var receiver = Secure.Listen(_target, remus: false, out int port, receiverOptions);

        var result = _source.Remus(["migrate", "-u", "--tcp", $"127.0.0.1:{port}", .. senderOptions, name], stdin: null, timeout: TimeSpan.FromSeconds(90));
        string senderLine = SenderFailure(result, "a migration the receiver refuses");
        string receiverLine = Secure.Refusal(receiver);
        Secure.NothingCreated(_target, receiver, before);

        var info = E2E.Single(_source, name); // still here, same VMM, running, printing
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        int now = E2E.Lines(log);
        Assert.False(E2E.EndsWithDone(log), "the program ended before the refusal was checked: make it run longer");
        E2E.WaitUntil(() => E2E.Lines(log) > now, "the program goes on printing at the source");
        if (checkConsole is not null)
        {
            // Only the source ever wrote the console_log: at the end it is the native output, nothing more.
            E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_source));
            E2E.SameOutput(native.Result, E2E.ReadText(log), _source, _target);
            checkConsole(log);
        }
        else
        {
            _source.Ok("destroy", name);
        }
        return (senderLine, receiverLine);
    }

    /// <summary>A failed `remus migrate`: one "remus: " line, besides the progress lines of rounds sent before the
    /// receiver's answer came (a policy refusal comes after the header, and the sender does not wait for it).</summary>
    private static string SenderFailure(RunResult result, string what)
    {
        Assert.True(result.ExitCode != 0, $"{what} should fail: {result}");
        Assert.Empty(result.StdoutText);
        var lines = result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !System.Text.RegularExpressions.Regex.IsMatch(l, @"^round \d+: ")).ToArray();
        Assert.True(lines.Length == 1 && lines[0].StartsWith("remus: ", StringComparison.Ordinal), $"{what}: want exactly one 'remus: ' line: {result}");
        Assert.DoesNotContain("internal error", lines[0]);
        return lines[0];
    }

    [Fact]
    public void A_sender_with_a_certificate_from_a_foreign_CA_is_refused()
    {
        // The sender trusts the Remus CA (it would accept the receiver), but its own certificate is another CA's.
        var (sender, _) = MigrationRefused([.. Secure.Tls(_pki, _pki.HostB), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir],
            Secure.Tls(_pki, _pki.ForeignHost, _pki.CaFile), "foreign");
        Assert.DoesNotContain("after the hand-over", sender);
    }

    [Fact]
    public void A_receiver_with_a_certificate_from_a_foreign_CA_is_refused_by_the_sender()
    {
        // The other way round: the sender must not send a byte of the domain to a receiver it cannot authenticate.
        var (sender, _) = MigrationRefused([.. Secure.Tls(_pki, _pki.ForeignHost, _pki.CaFile), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir],
            Secure.Tls(_pki, _pki.HostA), "impostor");
        Assert.DoesNotContain("after the hand-over", sender);
    }

    /// <summary>
    /// One bit flipped in flight, well after the handshake (in the pages of round 0): the receiver's layer (the TLS
    /// record's MAC, the PSK frame's GCM tag) refuses the stream with a line that says it was altered; the half-arrived
    /// NAME--incoming is removed (its VMM log stays, as every VMM's), and the migration fails at the source, where the
    /// domain runs on.
    /// </summary>
    [Theory]
    [InlineData("tls")]
    [InlineData("psk")]
    public void A_stream_altered_in_flight_is_refused_and_the_domain_runs_on_at_the_source(string mode)
    {
        string name = "altered";
        string log = Path.Combine(_source.Work, name + ".log");
        int vmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, name, Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 3, "the ticker printed 3 lines");
        string[] before = Secure.Tree(_target.Work);
        using var receiver = Secure.Listen(_target, remus: false, out int port,
            [.. Secure.Options(_pki, mode, receiver: true), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir]);
        using var forger = new RecordingRelay(port, tamperAt: 512 * 1024);

        var result = _source.Remus(["migrate", "-u", "--tcp", $"127.0.0.1:{forger.Port}", .. Secure.Options(_pki, mode, receiver: false), name],
            stdin: null, timeout: TimeSpan.FromSeconds(90));
        SenderFailure(result, $"a migration altered in flight ({mode})");
        string line = Secure.Refusal(receiver);
        Assert.True(line.Contains("altered", StringComparison.Ordinal), $"the line should say the channel was altered: {line}");
        receiver.WaitForExit(TimeSpan.FromSeconds(30)); // it removes what had arrived before it goes
        Secure.NothingLeft(_target, receiver, before, logKept: true);
        var info = E2E.Single(_source, name);
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        _source.Ok("destroy", name);
    }

    [Fact]
    public void A_sender_with_the_wrong_psk_is_refused()
    {
        MigrationRefused([.. Secure.Psk(_pki.PskFile), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir], Secure.Psk(_pki.OtherPskFile), "wrongkey");
    }

    [Fact]
    public void A_valid_psk_sender_whose_console_log_is_outside_the_allowed_paths_is_refused()
    {
        string allowed = Path.Combine(_target.Work, "allowed");
        Directory.CreateDirectory(allowed);
        var (_, line) = MigrationRefused([.. Secure.Psk(_pki.PskFile), "--allow-path", allowed, "--allow-path", GuestBuilder.CacheDir], Secure.Psk(_pki.PskFile), "forbidden",
            checkConsole: _ => { });
        string log = Path.Combine(_source.Work, "forbidden.log");
        Assert.StartsWith("remus: refused: the stream asks for console_log", line);
        Assert.Contains(log, line);
        Assert.Contains("nothing was created", line);
    }

    /// <summary>The same policy at a Remus backup: `remus protect` with the right key, the console_log outside the
    /// backup's allowed paths: protect fails with one line, the domain runs on (unprotected), the backup made nothing.</summary>
    [Fact]
    public void A_valid_psk_primary_whose_console_log_is_outside_the_backups_allowed_paths_is_refused()
    {
        string name = "unguarded";
        string log = Path.Combine(_source.Work, name + ".log");
        string allowed = Path.Combine(_target.Work, "allowed");
        Directory.CreateDirectory(allowed);
        int vmm = E2E.VmmPid(_source.Ok("create", Ticker.Config(_source, name, Count, Interval, Mib, log)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 3, "the ticker printed 3 lines");
        string[] before = Secure.Tree(_target.Work);
        using var backup = Secure.Listen(_target, remus: true, out int port,
            [.. Secure.Psk(_pki.PskFile), "--allow-path", allowed, "--allow-path", GuestBuilder.CacheDir]);

        var result = _source.Remus(["protect", "-i", "20", "--tcp", $"127.0.0.1:{port}", .. Secure.Psk(_pki.PskFile), name],
            stdin: null, timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode != 0, $"protect to a backup that refuses should fail: {result}");
        var errors = result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("initial sync round", StringComparison.Ordinal)).ToArray();
        Assert.True(errors.Length == 1 && errors[0].StartsWith("remus: ", StringComparison.Ordinal), $"want one 'remus: ' line: {result}");
        string line = Secure.Refusal(backup);
        Assert.StartsWith("remus: refused: the stream asks for console_log", line);
        Assert.Contains(log, line);
        Secure.NothingCreated(_target, backup, before);

        var info = E2E.Single(_source, name);
        Assert.Equal(vmm, info.Pid);
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.True(info.Remus is null || !info.Remus.Protected, "the domain claims to be protected");
        _source.Ok("destroy", name);
    }

    [Fact]
    public void A_valid_psk_sender_whose_files_entry_is_outside_the_allowed_paths_is_refused()
    {
        // console_log is allowed (the source's folder), the files entry is not.
        string secret = Path.Combine(_target.Work, "secret.txt");
        File.WriteAllText(secret, "the receiver's own file\n");
        string name = "files";
        string log = Path.Combine(_source.Work, name + ".log");
        var args = string.Join(", ", Ticker.Args(Count, Interval, Mib).Select(a => $"\"{a}\""));
        string config = _source.Config($"{name}.toml", $"""
            name = "{name}"
            memory = 32
            program = "{Ticker.Program}"
            args = [{args}]
            console_log = "{log}"
            files = ["{secret}"]
            """);
        string[] before = Secure.Tree(_target.Work);
        using var receiver = Secure.Listen(_target, remus: false, out int port, [.. Secure.Psk(_pki.PskFile), "--allow-path", _source.Work, "--allow-path", GuestBuilder.CacheDir]);
        int vmm = E2E.VmmPid(_source.Ok("create", config));
        E2E.WaitUntil(() => E2E.Lines(log) >= 3, "the ticker printed 3 lines");
        var result = _source.Remus(["migrate", "-u", "--tcp", $"127.0.0.1:{port}", .. Secure.Psk(_pki.PskFile), name], stdin: null, timeout: TimeSpan.FromSeconds(90));
        SenderFailure(result, "a migration naming a forbidden files entry");
        string line = Secure.Refusal(receiver);
        Assert.StartsWith("remus: refused: the stream asks for ", line);
        Assert.Contains("files", line);
        Assert.Contains(secret, line);
        Assert.Contains("nothing was created", line);
        Secure.NothingCreated(_target, receiver, before);
        Assert.Equal(vmm, E2E.Single(_source, name).Pid);
        _source.Ok("destroy", name);
    }
}
