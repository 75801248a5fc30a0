using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Remus.Sandbox.Platform;
using Remus.Soak.Harness;

namespace Remus.Bench;

/// <summary>
/// Failover time end to end, through real VMM processes started by the `remus` CLI as a user starts them: a primary
/// (`remus create` + `remus protect --tcp --insecure`) and a backup (`remus migrate-receive -r --tcp-listen --insecure`), each with a run
/// directory of its own, sharing one console_log path (the combined console). The guest prints a line every 1 ms
/// with its CLOCK_REALTIME, so a line stamped after the failure was produced by the backup's run of the program,
/// not re-emitted. Two figures, each the median of N runs (interleaved):
/// <list type="bullet">
/// <item>SIGKILL of the primary VMM -> the first new line on the backup: detection (the connection drops),
/// takeover (the last checkpoint becomes the domain, the rename) and the guest's first instructions;</item>
/// <item>SIGSTOP of the primary VMM -> the first new line on the backup: detection by the backup's --timeout
/// (the connection stays open; nothing arrives), then the same; shown with the timeout subtracted too.</item>
/// </list>
/// "Seen" is when this process read the line from console_log (polled every ~1 ms); the guest's own clock stamp of
/// that line says when the program ran on the backup.
/// </summary>
static partial class FailoverBench
{
    private const int SIGKILL = 9, SIGSTOP = 19;
    internal const int IntervalMs = 20;

    public static void Run(GuestBinaries guests, int runs, int timeoutMs)
    {
        string dll = Loopback.FindRemusDll();
        string ticker = guests.BuildTestGuest("nonce_ticker.c");
        var killed = new List<Sample>();
        var stopped = new List<Sample>();
        for (int r = 0; r < runs; r++)
        {
            killed.Add(Once(dll, ticker, stop: false, timeoutMs));
            stopped.Add(Once(dll, ticker, stop: true, timeoutMs));
            Console.Error.WriteLine($"run {r + 1}: SIGKILL {Describe(killed[^1])}; SIGSTOP {Describe(stopped[^1])}");
        }
        Report($"failover, primary VMM SIGKILLed -> first new console line on the backup (detection: connection lost; -i {IntervalMs}, backup --timeout {timeoutMs})",
            killed, 0);
        Report($"failover, primary VMM SIGSTOPped -> first new console line on the backup (detection: backup --timeout {timeoutMs} ms; -i {IntervalMs})",
            stopped, timeoutMs);
    }

    /// <summary>One measurement: times in ms from the signal.</summary>
    internal readonly record struct Sample(double SeenMs, double GuestMs, double AnnouncedMs, int Replayed, double ConsoleDelayMs, string? Discarded = null)
    {
        public static Sample Invalid(string why) => new(0, 0, 0, 0, 0, why);
    }

    private static long ToRealtimeNs(long ticks, long t0, long t0Ns) => t0Ns + (long)(Stopwatch.GetElapsedTime(t0, ticks).TotalMilliseconds * 1e6);

    private static void Report(string what, List<Sample> all, int timeoutMs)
    {
        var samples = all.Where(s => s.Discarded is null).ToList();
        foreach (var bad in all.Where(s => s.Discarded is not null))
            Console.WriteLine($"  (a run not counted: {bad.Discarded})");
        if (samples.Count == 0) { Console.WriteLine($"{what}: no valid run"); return; }
        double seen = Median(samples.Select(s => s.SeenMs)), guest = Median(samples.Select(s => s.GuestMs));
        // The backup's timeout runs from the last record it received, up to one interval before the signal.
        string minus = timeoutMs > 0 ? $" = timeout + {seen - timeoutMs:F1} ms" : "";
        Console.WriteLine($"{what}: {seen:F1} ms{minus} (min {samples.Min(s => s.SeenMs):F1}, max {samples.Max(s => s.SeenMs):F1}); " +
                          $"backup's 'Remus failover' line at {Median(samples.Select(s => s.AnnouncedMs)):F1} ms, the guest's clock stamp on the new line " +
                          $"{guest:F1} ms; {Median(samples.Select(s => (double)s.Replayed)):F0} lines re-emitted; lines reach this reader {Median(samples.Select(s => s.ConsoleDelayMs)):F1} ms after their stamp once the backup runs (median of {samples.Count})");
    }

    private static string Describe(Sample s) => s.Discarded ?? $"new line seen {s.SeenMs:F1} ms, stamped {s.GuestMs:F1} ms, announced {s.AnnouncedMs:F1} ms, {s.Replayed} re-emitted";

    internal static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>remus.dll and the nonce ticker, for other benchmarks that call <see cref="Once"/>.</summary>
    internal static (string Dll, string Ticker) Prepare(GuestBinaries guests) => (Loopback.FindRemusDll(), guests.BuildTestGuest("nonce_ticker.c"));

    /// <param name="witness">Extra options for both `protect` and `migrate-receive` (the witness's), or none.</param>
    internal static Sample Once(string dll, string ticker, bool stop, int timeoutMs, params string[] witness)
    {
        using var primary = new RemusHost(dll, "remus-bench-fo-");
        using var backupHost = new RemusHost(dll, "remus-bench-fo-");
        string log = Path.Combine(primary.Dir, "console.log");
        int port = Loopback.FreePort();
        using var backup = backupHost.Start(["migrate-receive", "-r", "--tcp-listen", $"127.0.0.1:{port}", "--insecure", "--allow-path", primary.Dir, "--allow-path", Path.GetDirectoryName(ticker)!, "--timeout", timeoutMs.ToString(CultureInfo.InvariantCulture), .. witness]);
        int vmm = 0;
        try
        {
            backup.WaitForStderr("waiting for a");
            string config = Path.Combine(primary.Dir, "fo.toml");
            File.WriteAllText(config, $"""
                name = "fo"
                memory = 32
                program = "{ticker}"
                args = ["100000000", "1000", "1"]
                console_log = "{log}"
                """);
            vmm = int.Parse(VmmPidPattern().Match(primary.Run("create", config)).Groups[1].Value, CultureInfo.InvariantCulture);
            primary.Run(["protect", "-i", IntervalMs.ToString(CultureInfo.InvariantCulture), "--timeout", "5000", "--tcp", $"127.0.0.1:{port}", "--insecure", .. witness, "fo"]);
            using var tail = new ConsoleTail(log);
            Thread.Sleep(1000); // protected and printing for a while
            tail.WaitFor(_ => true, "the protected program prints");

            if (backup.Stderr.Contains("Remus failover", StringComparison.Ordinal))
                return Sample.Invalid($"the backup took over before the primary was {(stop ? "stopped" : "killed")}: {backup.Stderr.Trim()}");
            long t0Ns = RealtimeNs(), t0 = Stopwatch.GetTimestamp();
            if (HostOs.kill(vmm, stop ? SIGSTOP : SIGKILL) != 0) throw new InvalidOperationException($"kill {vmm}: {HostOs.ErrorText(HostOs.LastError)}");
            long failedAtNs = RealtimeNs(); // after kill(2) returned: no line stamped later comes from the primary
            (string Line, long SeenAt) first;
            try { first = tail.WaitFor(l => Stamp(l) > failedAtNs, "a line printed after the failure (the backup runs the program)"); }
            catch (TimeoutException e) { return Sample.Invalid($"{e.Message}; the backup said: {backup.Stderr.Trim().Split('\n')[^1]}"); }
            var (line, seenAt) = first;
            double seenMs = Stopwatch.GetElapsedTime(t0, seenAt).TotalMilliseconds;
            double guestMs = (Stamp(line) - t0Ns) / 1e6;
            long announced = backup.WaitForStderr("Remus failover");
            // How late lines reach this reader once the backup runs unprotected: stamp to seen, over the next 100 lines.
            var after = Enumerable.Range(1, 100).Select(k => tail.WaitFor(l => Stamp(l) > failedAtNs, "more new lines", skip: k)).ToList();
            double delay = Median(after.Select(x => (ToRealtimeNs(x.SeenAt, t0, t0Ns) - Stamp(x.Line)) / 1e6));
            return new Sample(seenMs, guestMs, Stopwatch.GetElapsedTime(t0, announced).TotalMilliseconds, tail.Repeated, delay);
        }
        finally
        {
            if (vmm > 0 && HostOs.ProcessExists(vmm)) HostOs.kill(vmm, SIGKILL); // the stopped primary (SIGKILL ends a stopped process)
            backupHost.TryRun("destroy", "fo");
            backup.Kill(); // by its own pid, if it still runs
        }
    }

    [GeneratedRegex(@"VMM pid (\d+)")]
    private static partial Regex VmmPidPattern();

    [GeneratedRegex(@"^tick (\d+) t (\d+) r [0-9a-f]{16}$")]
    private static partial Regex LinePattern();

    private static long Stamp(string line)
    {
        var m = LinePattern().Match(line);
        return m.Success ? long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : 0;
    }

    private static long Counter(string line)
    {
        var m = LinePattern().Match(line);
        return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
    }

    private static long RealtimeNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>
    /// Reads console_log from its start and as it grows (polled about every millisecond), keeping each complete line
    /// with the moment it was seen; counts the lines whose counter went back (re-emitted at the takeover).
    /// </summary>
    private sealed class ConsoleTail : IDisposable
    {
        private readonly List<(string Line, long SeenAt)> _lines = [];
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _lastCounter = -1;

        public ConsoleTail(string path)
        {
            _thread = new Thread(() => Poll(path)) { IsBackground = true, Name = "console-tail" };
            _thread.Start();
        }

        public int Repeated { get; private set; }

        private void Poll(string path)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var buffer = new byte[1 << 16];
            var partial = new StringBuilder();
            while (!_stop)
            {
                int n = stream.Read(buffer);
                if (n == 0) { Thread.Sleep(1); continue; }
                long now = Stopwatch.GetTimestamp();
                partial.Append(Encoding.UTF8.GetString(buffer, 0, n));
                string text = partial.ToString();
                int end = text.LastIndexOf('\n');
                if (end < 0) continue;
                partial.Clear().Append(text, end + 1, text.Length - end - 1);
                foreach (var line in text[..end].Split('\n'))
                {
                    long c = Counter(line);
                    lock (_lines)
                    {
                        if (c >= 0 && c <= _lastCounter) Repeated++;
                        _lastCounter = Math.Max(_lastCounter, c);
                        _lines.Add((line, now));
                        Monitor.PulseAll(_lines);
                    }
                }
            }
        }

        /// <summary>The first (or, with <paramref name="skip"/>, a later) line since the start that matches, and when it was seen.</summary>
        public (string Line, long SeenAt) WaitFor(Func<string, bool> match, string what, int skip = 0)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            lock (_lines)
            {
                for (int i = 0; ; )
                {
                    for (; i < _lines.Count; i++)
                        if (match(_lines[i].Line) && skip-- == 0) return _lines[i];
                    if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
                    Monitor.Wait(_lines, 100);
                }
            }
        }

        public void Dispose()
        {
            _stop = true;
            _thread.Join();
        }
    }
}
