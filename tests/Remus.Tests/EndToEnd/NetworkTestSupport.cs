using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.EndToEnd;

/// <summary>Which HTTP server a network test runs in its domain (same protocol, see tests/guests/net/http_server.c).</summary>
public enum HttpServerKind
{
    /// <summary>tests/guests/net/http_server.c, gcc -static (glibc).</summary>
    C,

    /// <summary>The same built with musl-gcc -static.</summary>
    CMusl,

    /// <summary>tests/guests/go/httpd.go (net/http), CGO_ENABLED=0.</summary>
    Go,
}

/// <summary>The HTTP guests of the network end-to-end tests (tests/guests/net, tests/guests/go/httpd.go).</summary>
internal static class HttpGuests
{
    public const int Port = 8080;

    /// <summary>Skips unless curl (the second client) and the server's toolchain (musl-gcc, go) are here.</summary>
    public static void Require(HttpServerKind kind)
    {
        Skip.If(ProcessRunner.FindOnPath("curl") is null, "curl is not installed (apt-get install curl; .ci/run installs it)");
        if (kind == HttpServerKind.Go) RuntimeBuilder.Require(RuntimeLanguage.Go);
        if (kind == HttpServerKind.CMusl) Skip.If(!GuestBuilder.MuslAvailable, "musl-gcc is not installed (apt-get install musl-tools)");
    }

    public static string Server(HttpServerKind kind) => kind switch
    {
        HttpServerKind.C => GuestBuilder.Build("net/http_server"),
        HttpServerKind.CMusl => GuestBuilder.Build("net/http_server", GuestFlavor.Musl),
        HttpServerKind.Go => RuntimeBuilder.Build(RuntimeLanguage.Go, "httpd"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The client, built with gcc -static; it runs natively in the test's namespace.</summary>
    public static string Client => GuestBuilder.Build("net/http_client");

    public static string CurlLoop => Path.Combine(GuestBuilder.GuestsDir, "net", "curl_loop.sh");

    /// <summary>Memory for the server's domain (the Go runtime reserves more).</summary>
    public static int MemoryMiB(HttpServerKind kind) => kind == HttpServerKind.Go ? 256 : 64;

    /// <summary>The counters a server printed on its console ("n=N" lines), in order.</summary>
    public static List<long> ConsoleCounters(string console) =>
        console.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("n=", StringComparison.Ordinal))
            .Select(l => long.Parse(l.AsSpan(2), CultureInfo.InvariantCulture))
            .ToList();

    /// <summary>The highest counter on a console so far (0: none).</summary>
    public static long MaxCounter(string consoleLog)
    {
        var text = E2E.ReadText(consoleLog);
        long max = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("n=", StringComparison.Ordinal) && long.TryParse(line.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out long n))
                max = Math.Max(max, n);
        }
        return max;
    }
}

/// <summary>
/// The addresses of one test's link: the domain at 10.A.B.2/24, the host side of its tap at 10.A.B.1/24 (random A.B
/// per test), the tap named rmt + the namespace's tag, created by the VMM inside the test's namespace.
/// </summary>
internal sealed record WebLink(string Netns, string Tap, string DomainAddress, string HostAddress)
{
    public static WebLink For(NetNamespace ns)
    {
        var r = RandomNumberGenerator.GetBytes(2);
        string net = $"10.{64 + (r[0] % 128)}.{1 + (r[1] % 254)}";
        return new WebLink(ns.Name, "rmt" + ns.Tag, $"{net}.2", $"{net}.1");
    }

    /// <summary>The config's [network] table (last in the file: TOML tables follow the top-level keys).</summary>
    public string Toml => $"""
        [network]
        tap = "{Tap}"
        netns = "{Netns}"
        address = "{DomainAddress}/24"
        host_address = "{HostAddress}/24"
        """;

    public string Url(string path) => $"http://{DomainAddress}:{HttpGuests.Port}{path}";

    /// <summary>A domain config (NAME.toml in the host's work folder) running <paramref name="kind"/>'s server on this link.</summary>
    public string Config(DomainTestBed host, string name, HttpServerKind kind, string consoleLog, PlatformKind? platform) =>
        host.Config($"{name}.toml", $"""
            name = "{name}"
            memory = {HttpGuests.MemoryMiB(kind)}
            program = "{HttpGuests.Server(kind)}"
            args = ["{HttpGuests.Port}"]
            console_log = "{consoleLog}"
            {E2E.PlatformLine(platform)}
            {Toml}
            """);
}

/// <summary>What http_client printed at its end (key=value lines, counters as ranges).</summary>
internal sealed class ClientSummary
{
    private readonly Dictionary<string, string> _values = [];

    public ClientSummary(string stdout)
    {
        Text = stdout;
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("progress ", StringComparison.Ordinal)) continue;
            int eq = line.IndexOf('=');
            if (eq > 0) _values[line[..eq]] = line[(eq + 1)..];
        }
        if (!_values.ContainsKey("counters")) throw new XunitException($"http_client printed no summary:\n{stdout}");
        Counters = ParseRanges(_values["counters"]);
    }

    public string Text { get; }

    /// <summary>The distinct counters the client saw, ascending.</summary>
    public List<long> Counters { get; }

    public long this[string key] => long.Parse(_values[key], CultureInfo.InvariantCulture);

    /// <summary>The summary without the counters line (for messages).</summary>
    public string Brief => string.Join(' ', _values.Where(kv => kv.Key != "counters").Select(kv => $"{kv.Key}={kv.Value}"));

    private static List<long> ParseRanges(string s)
    {
        var list = new List<long>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = part.IndexOf('-');
            long a = long.Parse(dash < 0 ? part : part[..dash], CultureInfo.InvariantCulture);
            long b = dash < 0 ? a : long.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture);
            for (long n = a; n <= b; n++) list.Add(n);
        }
        return list;
    }
}

/// <summary>
/// The load of a network test, in its namespace: http_client (keep-alive connections and fresh ones) and, when asked,
/// curl in a loop (curl_loop.sh), both stopped by a stop file. Disposing kills what still runs, by pid.
/// </summary>
internal sealed class HttpLoad : IDisposable
{
    private static readonly Regex progressLine = new(@"^progress ok=(\d+) ", RegexOptions.Multiline);
    private readonly string _stopFile;
    private readonly CollectedProcess _client;
    private readonly CollectedProcess? _curl;

    private HttpLoad(string stopFile, CollectedProcess client, CollectedProcess? curl)
    {
        _stopFile = stopFile;
        _client = client;
        _curl = curl;
    }

    /// <summary>Starts http_client (<paramref name="keepAlive"/> keep-alive connections, <paramref name="fresh"/>
    /// loops of fresh ones) and, with <paramref name="curl"/>, the curl loop, against the domain of <paramref name="link"/>.</summary>
    public static HttpLoad Start(NetNamespace ns, WebLink link, string work, int keepAlive = 4, int fresh = 1, bool curl = true)
    {
        string stop = Path.Combine(work, "stop-" + Guid.NewGuid().ToString("N")[..8]);
        var client = new CollectedProcess(ns.Start(HttpGuests.Client, link.DomainAddress, HttpGuests.Port.ToString(CultureInfo.InvariantCulture),
            "-k", keepAlive.ToString(CultureInfo.InvariantCulture), "-f", fresh.ToString(CultureInfo.InvariantCulture),
            "-s", stop, "-t", "60000"));
        var loop = curl ? new CollectedProcess(ns.Start("sh", HttpGuests.CurlLoop, link.Url("/n"), stop)) : null;
        return new HttpLoad(stop, client, loop);
    }

    /// <summary>Requests http_client has had answered so far (its last progress line).</summary>
    public long ClientOk
    {
        get
        {
            var m = progressLine.Matches(_client.Stdout);
            return m.Count == 0 ? 0 : long.Parse(m[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        }
    }

    public bool AnyExited => _client.Process.HasExited || (_curl?.Process.HasExited ?? false);

    public string Describe() =>
        $"--- http_client stdout (tail) ---\n{Tail(_client.Stdout)}\n--- http_client stderr ---\n{_client.Stderr}" +
        (_curl is null ? "" : $"\n--- curl loop stderr ---\n{_curl.Stderr}\n--- curl loop stdout (tail) ---\n{Tail(_curl.Stdout)}");

    private static string Tail(string s, int lines = 20) => string.Join('\n', s.Split('\n').TakeLast(lines));

    /// <summary>Tells both clients to stop, waits for them and returns their results.</summary>
    public (ClientSummary Client, CurlResult? Curl) Stop(TimeSpan timeout, Func<string> details)
    {
        File.WriteAllText(_stopFile, "");
        foreach (var p in new[] { _client, _curl })
        {
            if (p is null) continue;
            if (!p.Process.WaitForExit(timeout))
                throw new XunitException($"a client did not stop within {timeout.TotalSeconds:F0} s\n{Describe()}\n{details()}");
            p.Process.WaitForExit(); // drain the readers
        }
        return (new ClientSummary(_client.Stdout), _curl is null ? null : new CurlResult(_curl.Stdout, _curl.Stderr));
    }

    public void Dispose()
    {
        foreach (var p in new[] { _client, _curl })
        {
            if (p is null) continue;
            try
            {
                if (!p.Process.HasExited) p.Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException) { }
        }
    }
}

/// <summary>A process started in the namespace, its two streams collected.</summary>
internal sealed class CollectedProcess
{
    private readonly StringBuilder _out = new(), _err = new();

    public CollectedProcess(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.Append(e.Data).Append('\n'); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_err) _err.Append(e.Data).Append('\n'); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
    }

    public Process Process { get; }

    public string Stdout
    {
        get { lock (_out) return _out.ToString(); }
    }

    public string Stderr
    {
        get { lock (_err) return _err.ToString(); }
    }
}

/// <summary>What the curl loop printed: each answer's body, then curl_ok/curl_failed/curl_connect_errors.</summary>
internal sealed class CurlResult
{
    private static readonly Regex bodyLine = new(@"^n=(\d+) t=(\d+)$");

    public CurlResult(string stdout, string stderr)
    {
        Stderr = stderr;
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("curl_", StringComparison.Ordinal))
            {
                int eq = line.IndexOf('=');
                Values[line[..eq]] = long.Parse(line[(eq + 1)..], CultureInfo.InvariantCulture);
                continue;
            }
            var m = bodyLine.Match(line);
            if (!m.Success) BadBodies.Add(line);
            else Counters.Add(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        if (!Values.ContainsKey("curl_ok")) throw new XunitException($"the curl loop printed no summary:\n{stdout}\n{stderr}");
    }

    public Dictionary<string, long> Values { get; } = [];
    public List<long> Counters { get; } = [];
    public List<string> BadBodies { get; } = [];
    public string Stderr { get; }

    public string Brief => string.Join(' ', Values.Select(kv => $"{kv.Key}={kv.Value}"));
}

/// <summary>The assertions of the headline: no request failed, no reset, every answer correct, no counter gap or repeat.</summary>
internal static class HttpLoadAssert
{
    /// <summary>
    /// Asserts every request of both clients succeeded with a correct answer on connections that were never reset, and
    /// that the counters they saw together are exactly 1..M, each once, where M is the server's last counter on its
    /// console (released output: no request the server answered was lost, none answered twice). The console may
    /// repeat at most <paramref name="replays"/> contiguous runs of lines (a backup taking over re-emits the last epoch's
    /// output, which the world may have seen already). Returns M.
    /// </summary>
    public static long NoFailureNoGap(ClientSummary client, CurlResult? curl, string console, Func<string> details, int replays = 1)
    {
        string context() => $"http_client: {client.Brief}\ncurl: {curl?.Brief}\n{details()}";
        foreach (var key in new[] { "requests_failed", "resets", "timeouts", "bad_responses", "non_monotonic", "duplicates", "keepalive_reopened" })
            Assert.True(client[key] == 0, $"http_client: {key}={client[key]}\n{context()}");
        Assert.True(client["keepalive_served_min"] > 0, $"a keep-alive connection served nothing\n{context()}");
        if (curl is not null)
        {
            Assert.True(curl.Values["curl_failed"] == 0, $"curl failed {curl.Values["curl_failed"]} requests:\n{curl.Stderr}\n{context()}");
            Assert.True(curl.BadBodies.Count == 0, $"curl got bad bodies: {string.Join(" | ", curl.BadBodies.Take(5))}\n{context()}");
        }

        var all = client.Counters.Concat(curl?.Counters ?? []).ToList();
        var repeated = all.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).Take(10).ToList();
        Assert.True(repeated.Count == 0, $"counters answered twice (a rollback): {string.Join(",", repeated)}\n{context()}");
        var sorted = all.Order().ToList();
        Assert.True(sorted.Count > 0, $"no answers at all\n{context()}");

        // The console: each counter the server printed, in order; a contiguous run per takeover may be a replay of its last epoch.
        var printed = HttpGuests.ConsoleCounters(console);
        var distinct = new SortedSet<long>(printed);
        long m = distinct.Count == 0 ? 0 : distinct.Max;
        Assert.True(distinct.Count == m && (m == 0 || distinct.Min == 1), $"the console's counters are not 1..{m}: {Gaps(distinct)}\n{context()}");
        AssertReplays(printed, replays, context);

        var missing = Enumerable.Range(1, (int)m).Select(i => (long)i).Except(sorted).Take(10).ToList();
        Assert.True(missing.Count == 0 && sorted[^1] == m,
            $"the server answered 1..{m} but the clients saw {sorted.Count} counters up to {sorted[^1]}; missing: {string.Join(",", missing)}\n{context()}");
        return m;
    }

    private static void AssertReplays(List<long> printed, int replays, Func<string> context)
    {
        long high = 0;
        int runs = 0;
        bool inRun = false;
        foreach (var n in printed)
        {
            if (n <= high)
            {
                if (!inRun) runs++;
                inRun = true;
                Assert.True(runs <= replays, $"the console repeated counters {runs} times (at most {replays}) at n={n}\n{context()}");
                continue;
            }
            Assert.True(n == high + 1, $"the console jumps from n={high} to n={n}\n{context()}");
            inRun = false;
            high = n;
        }
    }

    private static string Gaps(SortedSet<long> s)
    {
        var gaps = new List<string>();
        long prev = 0;
        foreach (var n in s)
        {
            if (n != prev + 1) gaps.Add($"{prev}->{n}");
            prev = n;
            if (gaps.Count == 10) break;
        }
        return gaps.Count == 0 ? "none" : string.Join(" ", gaps);
    }
}
