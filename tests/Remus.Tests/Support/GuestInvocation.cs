namespace Remus.Tests.Support;

/// <summary>
/// One run of a guest program, described once and run two ways: in a domain (<see cref="RemusCli"/>) and
/// natively (<see cref="NativeRun"/>), so that both see the same argv, environment and stdin.
/// </summary>
/// <param name="Program">The program path exactly as given on the command line; it is also argv[0] in both runs.</param>
public sealed record GuestInvocation(string Program)
{
    /// <summary>argv[1..].</summary>
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>The whole environment of the program, in order (remus --env K=V; natively: nothing else).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Env { get; init; } = [];

    /// <summary>Host files or directories the domain may read (remus --file); a native run can read anything.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>remus --memory in MiB; null for the default (128).</summary>
    public int? MemoryMiB { get; init; }

    /// <summary>remus --platform (a domain run only); null: none given, REMUS_PLATFORM or auto decides.</summary>
    public Remus.Sandbox.Platform.PlatformKind? Platform { get; init; }

    /// <summary>Bytes fed to stdin, which is then closed.</summary>
    public byte[] Stdin { get; init; } = [];

    /// <summary>The remus command line for this run: run [--memory N] [--platform P] [--env K=V]... [--file P]... program args...</summary>
    public IReadOnlyList<string> ToRemusArgs()
    {
        var a = new List<string> { "run" };
        if (MemoryMiB is int m) a.AddRange(["--memory", m.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (Platform is { } p) a.AddRange(["--platform", Platforms.Name(p)]);
        foreach (var (k, v) in Env) a.AddRange(["--env", $"{k}={v}"]);
        foreach (var f in Files) a.AddRange(["--file", f]);
        a.Add(Program);
        a.AddRange(Args);
        return a;
    }

    public override string ToString() => "remus " + string.Join(' ', ToRemusArgs().Select(Quote));

    private static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
