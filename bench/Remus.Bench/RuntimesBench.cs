using System.Text;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

namespace Remus.Bench;

/// <summary>
/// `remus-bench runtimes [--runs N]` (issue 8 item 7): the Go programs of tests/guests/go that measure a runtime,
/// natively and in a domain on every platform this machine has, wall seconds (median of N) and the ratio to native:
/// <list type="bullet">
/// <item>cpubound: a sieve + hash loop in one goroutine (what the runtime's own threads cost around pure computation);</item>
/// <item>pingpong: two goroutines handing a value back and forth over unbuffered channels (futex wake-ups between
/// threads, the scheduler's hand-offs), reported per hand-off as well.</item>
/// </list>
/// Built with the go on PATH (Debian's golang-go: CGO_ENABLED=0, static), offline, with a private GOCACHE. A domain
/// that cannot run them yet prints "not runnable yet: " and the program's first line on stderr (virtual memory and
/// threads come from other branches); the native half always runs.
/// </summary>
static class RuntimesBench
{
    private sealed record Program(string Name, string[] Args, Func<string, string> Detail);

    public static void Run(int runs)
    {
        string dir = Directory.CreateTempSubdirectory("remus-bench-go-").FullName;
        const int handOffRounds = 500_000;
        Program[] programs =
        [
            new("cpubound", ["10000000", "5"], _ => ""),
            new("pingpong", [handOffRounds.ToString(System.Globalization.CultureInfo.InvariantCulture)],
                s => s == "" ? "" : $", {double.Parse(s, System.Globalization.CultureInfo.InvariantCulture) * 1e9 / (2 * handOffRounds):F0} ns per hand-off"),
        ];
        var platforms = new List<PlatformKind>();
        if (PlatformSelection.PtraceSelfTest.Passed) platforms.Add(PlatformKind.Ptrace);
        if (PlatformSelection.KvmSelfTest.Passed) platforms.Add(PlatformKind.Kvm);
        Console.WriteLine($"Go runtime programs (median of {runs}; wall seconds; ratio = domain / native):");
        foreach (var p in programs)
        {
            string binary;
            try
            {
                binary = BuildGo(p.Name, dir);
            }
            catch (InvalidOperationException e)
            {
                Console.WriteLine($"  {p.Name}: not built: {e.Message}");
                continue;
            }
            var expected = Measure.Native(binary, p.Args);
            double native = Measure.Median(runs, () => Measure.Native(binary, p.Args).Seconds);
            string nativeText = native.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
            Console.WriteLine($"  {p.Name} {string.Join(' ', p.Args)}: native {native:F3} s{p.Detail(nativeText)}");
            foreach (var platform in platforms)
            {
                var first = InDomain(platform, binary, p.Args);
                if (first.ExitCode != expected.ExitCode || first.Stdout != expected.Stdout)
                {
                    string why = first.Stderr.Split('\n').FirstOrDefault(l => l.Trim().Length > 0) ?? $"exit {first.ExitCode}, output differs";
                    Console.WriteLine($"    {PlatformSelection.NameOf(platform)}: not runnable yet: {why} (exit {first.ExitCode})");
                    continue;
                }
                double domain = Measure.Median(runs, () => InDomain(platform, binary, p.Args).Seconds);
                string domainText = domain.ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
                Console.WriteLine($"    {PlatformSelection.NameOf(platform)}: {domain:F3} s{p.Detail(domainText)}, ratio {domain / native:F2}");
            }
        }
    }

    /// <summary>go build of tests/guests/go/NAME.go into <paramref name="dir"/>: static, offline, private caches.</summary>
    private static string BuildGo(string name, string dir)
    {
        string root = FindRoot();
        string source = Path.Combine(root, "tests", "guests", "go", name + ".go");
        string output = Path.Combine(dir, name);
        string home = Path.Combine(dir, "go-home");
        var r = Measure.Native("env", "CGO_ENABLED=0", "GOFLAGS=-trimpath", "GOTOOLCHAIN=local", "GOPROXY=off", "GO111MODULE=off",
            $"GOCACHE={home}/cache", $"GOPATH={home}/path", $"HOME={home}", "go", "build", "-o", output, source);
        if (r.ExitCode != 0) throw new InvalidOperationException($"go build exited {r.ExitCode}: {r.Stderr.Trim()}");
        return output;
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Remus.sln"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Remus.sln)");
    }

    /// <summary>Runs the program in an in-process domain (512 MiB: the Go heap's arenas) and keeps both streams.</summary>
    private static RunResult InDomain(PlatformKind platform, string program, string[] args)
    {
        var console = new TwoStreamConsole();
        using var d = SandboxDomain.Create(new DomainSpec { ProgramPath = program, Args = args, Platform = platform, MemoryMiB = 512 }, console);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int status = d.Run();
        return new RunResult(status, console.Text(1), console.Text(2), sw.Elapsed.TotalSeconds);
    }

    private sealed class TwoStreamConsole : IConsole
    {
        private readonly StringBuilder _out = new(), _err = new();

        public void Write(int stream, ReadOnlySpan<byte> data)
        {
            var sb = stream == 2 ? _err : _out;
            lock (sb) sb.Append(Encoding.UTF8.GetString(data));
        }

        public string Text(int stream)
        {
            var sb = stream == 2 ? _err : _out;
            lock (sb) return sb.ToString();
        }

        public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
        public bool IsTerminal => false;
    }
}
