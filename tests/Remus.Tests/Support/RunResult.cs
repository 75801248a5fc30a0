using System.Text;

namespace Remus.Tests.Support;

/// <summary>What one process run produced: its exit status (128+signal when killed by a signal) and its two streams, kept apart.</summary>
public sealed record RunResult(int ExitCode, byte[] Stdout, byte[] Stderr, TimeSpan Elapsed)
{
    /// <summary>For remus runs: the entries left in the run directory (REMUS_RUN_DIR) after the process ended.</summary>
    public IReadOnlyList<string> LeftBehind { get; init; } = [];

    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    public string StderrText => Encoding.UTF8.GetString(Stderr);

    public override string ToString() =>
        $"exit {ExitCode} after {Elapsed.TotalMilliseconds:F0} ms\n--- stdout ({Stdout.Length} bytes) ---\n{Show(Stdout)}\n--- stderr ({Stderr.Length} bytes) ---\n{Show(Stderr)}";

    /// <summary>Printable rendering of (the start of) a byte stream: text as is, other bytes as \xNN.</summary>
    public static string Show(byte[] bytes, int max = 4096)
    {
        var sb = new StringBuilder();
        var text = Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, max));
        foreach (var c in text)
        {
            if (c == '\n' || c == '\t' || (c >= ' ' && c != '\x7f')) sb.Append(c);
            else sb.Append($"\\x{(int)c:x2}");
        }
        if (bytes.Length > max) sb.Append($"\n... ({bytes.Length - max} more bytes)");
        return sb.ToString();
    }
}
