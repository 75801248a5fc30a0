using System.Text;
using Xunit.Sdk;

namespace Remus.Tests.Support;

/// <summary>Assertions that compare a domain run with a native run and explain any difference.</summary>
public static class GuestAssert
{
    /// <summary>Exit status, stdout bytes and stderr bytes of the domain run equal those of the native run.</summary>
    public static void SameAsNative(RunResult native, RunResult domain, GuestInvocation? guest = null)
    {
        var problems = new List<string>();
        if (native.ExitCode != domain.ExitCode) problems.Add($"exit status: native {native.ExitCode}, domain {domain.ExitCode}");
        if (Diff(native.Stdout, domain.Stdout) is string o) problems.Add("stdout: " + o);
        if (Diff(native.Stderr, domain.Stderr) is string e) problems.Add("stderr: " + e);
        if (problems.Count == 0) return;

        var sb = new StringBuilder();
        sb.AppendLine("domain run differs from native run:");
        foreach (var p in problems) sb.AppendLine("  " + p);
        if (guest is not null) sb.AppendLine("command: " + guest);
        sb.AppendLine("=== native ===").AppendLine(native.ToString());
        sb.AppendLine("=== domain ===").AppendLine(domain.ToString());
        throw new XunitException(sb.ToString());
    }

    /// <summary>Null if equal, else where the two byte streams first differ.</summary>
    public static string? Diff(byte[] expected, byte[] actual)
    {
        if (expected.AsSpan().SequenceEqual(actual)) return null;
        int i = expected.AsSpan().CommonPrefixLength(actual);
        int lineNo = 1 + expected.AsSpan(0, i).Count((byte)'\n');
        return $"lengths native {expected.Length} / domain {actual.Length}, first difference at byte {i} (line {lineNo}): " +
               $"native \"{Around(expected, i)}\" vs domain \"{Around(actual, i)}\"";
    }

    private static string Around(byte[] b, int i)
    {
        if (i >= b.Length) return "<end>";
        int start = Math.Max(0, i - 20), len = Math.Min(b.Length - start, 60);
        return RunResult.Show(b[start..(start + len)]).Replace("\n", "\\n");
    }

    /// <summary>A refused command: non-zero exit, nothing on stdout, exactly one line on stderr, no .NET stack trace, nothing left in the run dir.</summary>
    public static string OneLineError(RunResult r)
    {
        var why = new List<string>();
        if (r.ExitCode == 0) why.Add("exit status is 0");
        if (r.Stdout.Length != 0) why.Add("stdout is not empty");
        var err = r.StderrText;
        if (err.Contains("   at ", StringComparison.Ordinal)) why.Add("stderr has a stack trace");
        var trimmed = err.TrimEnd('\n', '\r');
        if (trimmed.Trim().Length == 0) why.Add("stderr is empty");
        else if (trimmed.Contains('\n')) why.Add($"stderr has {trimmed.Split('\n').Length} lines, not one");
        if (r.LeftBehind.Count != 0) why.Add("left behind in the run dir: " + string.Join(", ", r.LeftBehind));
        if (why.Count != 0) throw new XunitException("expected a one-line error: " + string.Join("; ", why) + "\n" + r);
        return trimmed;
    }
}
