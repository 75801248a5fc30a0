using Remus.Tests.EndToEnd;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// Issue 13, the channel options through the real CLI (no domain needed: they are judged before the domain is asked):
/// a TCP channel with no protection chosen on the command line or in the host config is refused in one line on both
/// ends; the host config's [psk] counts; --insecure is accepted and warns exactly once; the options are refused on
/// ssh/stdin channels; TLS takes its three files together and one protection at a time.
/// </summary>
public sealed class ChannelOptionsCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    /// <summary>REMUS_HOST_CONFIG for every command: a file that does not exist (an empty host config) unless given.</summary>
    private RunResult Remus(string? hostConfig, params string[] args) =>
        _bed.Remus(args, stdin: null, environment: [new("REMUS_HOST_CONFIG", hostConfig ?? Path.Combine(_bed.Work, "no-host.toml"))]);

    private static string OneLine(RunResult result, string what)
    {
        Assert.True(result.ExitCode != 0, $"{what} should fail: {result}");
        var lines = result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("remus: ", StringComparison.Ordinal), $"{what}: want one 'remus: ' line: {result}");
        Assert.DoesNotContain("internal error", lines[0]);
        return lines[0];
    }

    [Fact]
    public void A_TCP_channel_with_no_protection_anywhere_is_refused_in_one_line_naming_the_three_ways()
    {
        int port = E2E.FreePort();
        foreach (var args in new[]
                 {
                     new[] { "migrate", "--tcp", $"127.0.0.1:{port}", "nosuch" },
                     ["protect", "--tcp", $"127.0.0.1:{port}", "nosuch"],
                     ["migrate-receive", "--tcp-listen", $"127.0.0.1:{port}"],
                     ["migrate-receive", "-r", "--tcp-listen", $"127.0.0.1:{port}"],
                 })
        {
            string line = OneLine(Remus(null, args), string.Join(' ', args));
            Assert.Contains("needs protection", line);
            Assert.Contains("--tls-cert", line);
            Assert.Contains("--psk-file", line);
            Assert.Contains("--insecure", line);
            Assert.Contains("host config", line);
        }
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void The_host_config_psk_protects_a_TCP_channel_the_command_line_says_nothing_about()
    {
        File.WriteAllBytes(Path.Combine(_bed.Work, "psk"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        string config = Path.Combine(_bed.Work, "host.toml");
        File.WriteAllText(config, "[psk]\nfile = \"psk\"\n");
        // Judged, then the domain is asked for: no such domain (the channel was never the problem).
        string line = OneLine(Remus(config, "migrate", "--tcp", $"127.0.0.1:{E2E.FreePort()}", "nosuch"), "migrate with the host's psk");
        Assert.DoesNotContain("needs protection", line);
        Assert.Contains("nosuch", line);
    }

    [Fact]
    public void Insecure_is_accepted_and_warns_exactly_once()
    {
        var result = Remus(null, "migrate", "--tcp", $"127.0.0.1:{E2E.FreePort()}", "--insecure", "nosuch");
        Assert.True(result.ExitCode != 0, result.ToString());
        var lines = result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Count(l => l.StartsWith(DomainTestBed.InsecureWarning, StringComparison.Ordinal)) == 1, $"want the warning once: {result}");
        Assert.Contains("plain TCP (--insecure): anyone on the path can read and forge it", result.StderrText);
        var others = lines.Where(l => !l.StartsWith(DomainTestBed.InsecureWarning, StringComparison.Ordinal)).ToArray();
        Assert.True(others.Length == 1 && others[0].Contains("nosuch", StringComparison.Ordinal), $"want one line about the domain: {result}");
    }

    [Fact]
    public void The_protection_options_are_refused_on_ssh_and_stdin_channels()
    {
        string psk = Path.Combine(_bed.Work, "psk");
        File.WriteAllBytes(psk, new byte[32]);
        foreach (var args in new[]
                 {
                     new[] { "migrate", "--psk-file", psk, "nosuch", "somehost" },
                     ["protect", "--insecure", "-s", "", "nosuch", "true"],
                     ["migrate-receive", "--insecure"],
                     ["migrate-receive", "-r", "--psk-file", psk],
                 })
        {
            string line = OneLine(Remus(null, args), string.Join(' ', args));
            Assert.Contains("ssh", line);
        }
    }

    [Fact]
    public void TLS_takes_its_three_files_together_and_one_protection_at_a_time()
    {
        string cert = Path.Combine(_bed.Work, "host.crt");
        File.WriteAllText(cert, "not read here");
        int port = E2E.FreePort();
        Assert.Contains("all three",
            OneLine(Remus(null, "migrate", "--tcp", $"127.0.0.1:{port}", "--tls-cert", cert, "nosuch"), "TLS with one file"));
        Assert.Contains("choose one",
            OneLine(Remus(null, "migrate-receive", "--tcp-listen", $"127.0.0.1:{port}", "--insecure", "--psk-file", cert), "two protections"));
        Assert.Contains("no such file",
            OneLine(Remus(null, "migrate", "--tcp", $"127.0.0.1:{port}", "--psk-file", Path.Combine(_bed.Work, "absent"), "nosuch"), "a missing PSK file"));
    }
}
