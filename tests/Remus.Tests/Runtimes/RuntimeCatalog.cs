using System.Text;
using System.Text.RegularExpressions;
using Remus.Tests.Support;

namespace Remus.Tests.Runtimes;

/// <summary>One scripted run of a Go or Rust guest (tests/guests/go, tests/guests/rust).</summary>
public sealed record RuntimeCase(string Name, RuntimeLanguage Language, string Program, int ExpectedExit = 0)
{
    public string[] Args { get; init; } = [];

    /// <summary>Guest RAM for the domain run; the Go runtime wants more than the default for its heap arenas.</summary>
    public int MemoryMiB { get; init; } = 512;

    /// <summary>What must appear on stderr (after <see cref="RuntimeCatalog.NormalizeStderr"/>), for the runs that die.</summary>
    public string? StderrContains { get; init; }

    public GuestInvocation Invocation() => new(RuntimeBuilder.Build(Language, Program))
    {
        Args = Args,
        MemoryMiB = MemoryMiB,
    };

    public override string ToString() => Name;
}

/// <summary>The Go and Rust programs that must print in a domain exactly what they print natively (issue 8 item 6).</summary>
public static partial class RuntimeCatalog
{
    public static IReadOnlyList<RuntimeCase> All { get; } =
    [
        new("go-goroutines", RuntimeLanguage.Go, "goroutines"),
        new("go-chanselect", RuntimeLanguage.Go, "chanselect"),
        new("go-syncs", RuntimeLanguage.Go, "syncs"),
        new("go-gcpressure", RuntimeLanguage.Go, "gcpressure"),
        new("go-nilpanic", RuntimeLanguage.Go, "nilpanic"),
        new("go-sigself", RuntimeLanguage.Go, "sigself"),
        new("go-gomaxprocs", RuntimeLanguage.Go, "gomaxprocs"),
        new("go-cpubound", RuntimeLanguage.Go, "cpubound") { Args = ["200000", "3"] },
        new("go-pingpong", RuntimeLanguage.Go, "pingpong") { Args = ["20000"] },
        new("rust-threads", RuntimeLanguage.Rust, "threads"),
        new("rust-mpsc", RuntimeLanguage.Rust, "mpsc"),
        new("rust-condvar", RuntimeLanguage.Rust, "condvar"),
        new("rust-panic_catch", RuntimeLanguage.Rust, "panic_catch"),
        new("rust-stackoverflow-main", RuntimeLanguage.Rust, "stackoverflow", 134) { StderrContains = "thread 'main' has overflowed its stack" },
        new("rust-stackoverflow-thread", RuntimeLanguage.Rust, "stackoverflow", 134) { Args = ["thread"], StderrContains = "thread 'deep' has overflowed its stack" },
    ];

    public static RuntimeCase Get(string name) => All.Single(c => c.Name == name);

    public static IEnumerable<string> Names => All.Select(c => c.Name);

    /// <summary>
    /// stderr with what legitimately differs between two runs taken out: Rust (1.80+) names a thread with its id,
    /// "thread 'main' (12345) panicked", and a domain's ids are not the host's.
    /// </summary>
    public static string NormalizeStderr(byte[] stderr) =>
        ThreadId().Replace(Encoding.UTF8.GetString(stderr), "thread '$1'");

    [GeneratedRegex(@"thread '([^']*)' \(\d+\)")]
    private static partial Regex ThreadId();
}
