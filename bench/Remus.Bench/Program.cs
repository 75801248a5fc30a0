// Remus benchmarks that print figures (never assertions). Usage:
//   remus-bench [cpu|syscall|start|save|migrate|remus|writer|failover|witness|spawn|threads|dirtylog|pagefault|platforms|vcpus|runtimes|net|volume|tls|scale|simulate|all] [--runs N] [--platform auto|kvm|ptrace]
// Each figure is the median of N runs (default 5; failover: 10) with this machine's baseline beside it, as a ratio.
// --platform runs the domains of cpu, syscall, start, save, migrate, remus, writer and dirtylog on that platform
// (default: auto, or REMUS_PLATFORM). platforms [--runs N] [--quick]: every platform this machine has, side by side in
// one table (PlatformsBench). failover [--runs N] [--timeout MS]: through the remus CLI and real VMM processes
// (FailoverBench); --timeout is the backup's. witness [--runs N] [--timeout MS]: the same SIGKILL failover without a
// witness and with one etcd member (TTL 1000, 500, 200 ms), one table (WitnessBench).
// Native programs (gcc, the baselines) are started with posix_spawn (ChildProcess), never System.Diagnostics.Process:
// after Process .NET handles SIGCHLD, which every ptrace stop raises, and in-process ptrace domains would pay for it.
using System.Diagnostics;
using System.Text;
using Remus.Bench;
using Remus.Sandbox;
using Remus.Sandbox.Platform;

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
string which = args.Where((a, i) => !a.StartsWith("--") && (i == 0 || args[i - 1] is not ("--runs" or "--platform" or "--timeout" or "--sizes" or "--seconds"))).FirstOrDefault() ?? "all";
int runs = Option("--runs") is { } n ? int.Parse(n) : 5;
PlatformKind platform = Option("--platform") is { } pk
    ? PlatformSelection.Parse(pk) ?? throw new ArgumentException($"--platform wants auto, kvm or ptrace, not '{pk}'")
    : PlatformKind.Auto;
if (which == "simulate") return SimulationBench.Run(args); // the Remus fault-injection harness over many seeds
if (which == "spawn-probe") return SpawnProbe(args[1], runs); // the child of SpawnBench: no Process before it measures
var guests = new GuestBinaries();

if (which is "cpu" or "all") CpuBench();
if (which is "syscall" or "all") SyscallBench();
if (which is "start" or "all") StartBench();
if (which is "save" or "all") CheckpointBenches.SaveRestore(guests, runs, platform);
if (which is "migrate" or "all") CheckpointBenches.Migration(guests, runs, platform);
if (which is "remus" or "all") CheckpointBenches.Remus(guests, runs, platform);
if (which is "writer") CheckpointBenches.Writer(guests, runs, platform); // parts of remus, alone
if (which is "failover")
    FailoverBench.Run(guests, args.Contains("--runs") ? runs : 10,
        args.SkipWhile(a => a != "--timeout").Skip(1).Select(int.Parse).FirstOrDefault(1000));
if (which is "witness") // failover time with an etcd witness (TTL 1 s, 500 ms, 200 ms) vs without: one table (WitnessBench)
    WitnessBench.Run(guests, args.Contains("--runs") ? runs : 5,
        args.SkipWhile(a => a != "--timeout").Skip(1).Select(int.Parse).FirstOrDefault(1000));
if (which is "spawn" or "all") SpawnBench();
if (which is "threads" or "all") ThreadsBench();
if (which is "pagefault" or "all") PageFaultBench();
if (which is "dirtylog") CheckpointBenches.DirtyLog(guests, runs, platform);
if (which is "platforms") PlatformsBench.Run(guests, runs, quick: args.Contains("--quick"));
if (which is "vcpus" or "all") VcpuBench.Run(runs);
if (which is "runtimes") RuntimesBench.Run(runs); // Go programs (cpubound, pingpong) native vs in a domain per platform
if (which is "net") NetBench.Run(guests, runs); // the domain's TCP/IP stack vs the host kernel's TCP, in test namespaces
if (which is "scale") ScaleBench.Run(guests, args, platform); // issue 14: 256 MiB .. 16 GiB domains, sync, pauses, migration (not in "all")
if (which is "volume") VolumeBench.Run(guests, runs, platform);
if (which is "tls") TlsBench.Run(guests, runs, platform); // migration MB/s and Remus checkpoint rate: plain vs TLS vs PSK over loopback // writes to a volume: native, unprotected, protected 40/100 Hz; SQLite bytes/epoch
return 0;

// Demand paging: what a first touch costs, natively and in a domain on each platform this machine has (the paged
// address space, docs/memory.md): ns per page touching a mapping in order (fault-around brings in 16-page runs) and
// ns per touch one page per 64 KiB (each touch a fault).
void PageFaultBench()
{
    string guest = guests.Build("pagefault.c");
    (double Seq, double Sparse) Parse(string stdout)
    {
        var w = stdout.Trim().Split(' ');
        return (double.Parse(w[1], System.Globalization.CultureInfo.InvariantCulture), double.Parse(w[3], System.Globalization.CultureInfo.InvariantCulture));
    }
    var nativeSeq = Measure.Median(runs, () => Parse(Measure.Native(guest, "64").Stdout).Seq);
    var nativeSparse = Measure.Median(runs, () => Parse(Measure.Native(guest, "64").Stdout).Sparse);
    Console.WriteLine($"demand faults, native: {nativeSeq:F0} ns/page in order, {nativeSparse:F0} ns per sparse touch (median of {runs})");
    foreach (var kind in new[] { PlatformKind.Ptrace, PlatformKind.Kvm })
    {
        if (kind == PlatformKind.Kvm && !PlatformSelection.KvmSelfTest.Passed) continue;
        var seq = Measure.Median(runs, () => Parse(Measure.InDomain(kind, guest, "64").Stdout).Seq);
        var sparse = Measure.Median(runs, () => Parse(Measure.InDomain(kind, guest, "64").Stdout).Sparse);
        Console.WriteLine($"demand faults, {PlatformSelection.NameOf(kind)}: {seq:F0} ns/page in order ({seq / nativeSeq:F1}x native), " +
                          $"{sparse:F0} ns per sparse touch, i.e. per fault ({sparse / nativeSparse:F1}x native; median of {runs})");
    }
}

// What starting a command costs every later guest syscall of the process that started it (a VMM that opened an ssh
// channel): measured in a fresh process, first with nothing started, then after ChildProcess (posix_spawn, what the
// VMM uses), then after System.Diagnostics.Process (after which .NET handles SIGCHLD, raised by every ptrace stop).
void SpawnBench()
{
    string guest = guests.Build("syscalls.c");
    var r = Measure.Native(Environment.ProcessPath!, "spawn-probe", guest, "--runs", runs.ToString());
    Console.Write(r.Stdout);
}

static int SpawnProbe(string guest, int runs)
{
    double Syscall() => Measure.Median(runs, () => ParseNs(Measure.InDomain(PlatformKind.Auto, guest, "20000").Stdout)) / 1000;
    double before = Syscall();
    using (var c = Remus.Sandbox.Platform.ChildProcess.StartShell("true")) { c.Stdin.Dispose(); new StreamReader(c.Stdout).ReadToEnd(); }
    double afterSpawn = Syscall();
    using (var p = Process.Start(new ProcessStartInfo("true"))!) p.WaitForExit();
    double afterProcess = Syscall();
    Console.WriteLine($"syscall round trip in a domain of a process that started a command: {afterSpawn:F1} us after posix_spawn " +
                      $"(ChildProcess), {afterProcess:F1} us after System.Diagnostics.Process; {before:F1} us before either " +
                      $"(ratios {afterSpawn / before:F2} / {afterProcess / before:F2}; median of {runs})");
    return 0;
}

// Thread creation: pthread_create + pthread_join of an empty thread, timed inside the program, in a domain vs natively.
void ThreadsBench()
{
    string guest = guests.Build("threads.c");
    const string count = "200";
    double native = Measure.Median(runs, () => Measure.Field(Measure.Native(guest, count).Stdout, "us_per_thread"));
    double domain = Measure.Median(runs, () => Measure.Field(Measure.InDomain(platform, guest, count).Stdout, "us_per_thread"));
    Console.WriteLine($"thread creation (pthread_create + join): native {native:F1} us, in a domain {domain:F1} us " +
                      $"({PlatformSelection.Choose(platform).Kind}), ratio {domain / native:F1} (median of {runs})");
    // The checkpoint pause by thread count, with the same dirty set (256 pages per pass, 1 ms sleeps), Remus at 40 Hz.
    string tdirtier = guests.Build("tdirtier.c");
    foreach (int threads in new[] { 1, 8 })
    {
        var spec = new DomainSpec { ProgramPath = tdirtier, Args = [threads.ToString(), "256", "1000", "60"], MemoryMiB = 128, Platform = platform };
        var stats = CheckpointBenches.Protect(spec, TimeSpan.FromMilliseconds(25), blackhole: false, compress: true, seconds: 2.5, out _);
        Console.WriteLine($"checkpoint pause, {threads} thread(s) dirtying 256 pages per pass together: {stats.PagesPerEpoch:F0} dirty pages/epoch, " +
                          $"pause p50 {stats.PauseP50Ms:F2} ms, p99 {stats.PauseP99Ms:F2} ms, {stats.Epochs} epochs");
    }
}

void CpuBench()
{
    string cpu = guests.Build("cpu.c");
    var native = Measure.Median(runs, () => Measure.Native(cpu, "20").Seconds);
    var domain = Measure.Median(runs, () => Measure.InDomain(platform, cpu, "20").RunSeconds);
    Console.WriteLine($"cpu-bound guest: native {native:F3} s, in a domain {domain:F3} s, speed ratio {native / domain:F3} (goal >= 0.98; median of {runs})");
}

void SyscallBench()
{
    string guest = guests.Build("syscalls.c");
    string probe = guests.BuildProbe("ptrace-roundtrip.c");
    double bare = PlatformSelection.Choose(platform).Kind == PlatformKind.Ptrace ? Measure.Median(runs, () => ParseNs(Measure.Native(probe, "20000").Stdout)) : 0;
    // In process: this process never uses System.Diagnostics.Process (see the top), so .NET has no SIGCHLD handler and
    // the domain pays what it pays under `remus run`. With REMUS_DLL set, the figure is taken through `remus run` too.
    string? cli = Environment.GetEnvironmentVariable("REMUS_DLL");
    double dom = cli != null
        ? Measure.Median(runs, () => ParseNs(Measure.Native("dotnet", cli, "run", "--platform", PlatformSelection.NameOf(platform), guest, "20000").Stdout))
        : Measure.Median(runs, () => ParseNs(Measure.InDomain(platform, guest, "20000").Stdout));
    double native = Measure.Median(runs, () => ParseNs(Measure.Native(guest, "200000").Stdout));
    // The probe is ptrace's floor; KVM's would be a bare KVM_RUN loop (the self-test's figure is printed instead).
    string floor = PlatformSelection.Choose(platform).Kind == PlatformKind.Ptrace
        ? $"bare ptrace round trip {bare / 1000:F1} us, ratio {dom / bare:F2} (goal <= 1.2)"
        : $"KVM self-test's syscall {PlatformSelection.KvmSelfTest.SyscallMicros:F1} us";
    Console.WriteLine($"syscall round trip ({PlatformSelection.Choose(platform).Name}): in a domain {dom / 1000:F1} us, {floor}; native syscall {native / 1000:F2} us (median of {runs})");
}

void StartBench()
{
    string t = guests.Build("true.c");
    double native = Measure.Median(runs, () => Measure.Native(t).Seconds);
    double create = Measure.Median(runs, () => Measure.InDomain(platform, t).TotalSeconds);
    Console.WriteLine($"domain start: create+run+exit of a trivial program {create * 1000:F1} ms in-process, native exec {native * 1000:F1} ms, ratio {create / native:F1}x (median of {runs})");
    string? remus = Environment.GetEnvironmentVariable("REMUS_DLL");
    if (remus != null)
    {
        double cli = Measure.Median(runs, () => Measure.Native("dotnet", remus, "run", t).Seconds);
        Console.WriteLine($"domain start: `remus run` of a trivial program {cli * 1000:F1} ms (whole CLI process, .NET start-up included), ratio {cli / native:F1}x to native");
    }
}

static double ParseNs(string output) => Measure.Field(output, "ns_per_call");

namespace Remus.Bench
{
    /// <summary>Builds the benchmark's C guests with gcc -static into a temporary folder.</summary>
    sealed class GuestBinaries
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("remus-bench-").FullName;
        private static readonly string Root = FindRoot();

        private static string FindRoot()
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Remus.sln"))) return d.FullName;
            throw new InvalidOperationException("cannot find the repository root (Remus.sln)");
        }

        public string Build(string source) => Compile(Path.Combine(Root, "bench", "guests", source), "-static");
        public string BuildTestGuest(string source) => Compile(Path.Combine(Root, "tests", "guests", source), "-static");
        public string BuildProbe(string source) => Compile(Path.Combine(Root, "bench", "probes", source));

        private string Compile(string source, string extra = "")
        {
            string output = Path.Combine(_dir, Path.GetFileNameWithoutExtension(source));
            var r = Measure.Native("gcc", "-O2", extra, "-o", output, source);
            if (r.ExitCode != 0) throw new InvalidOperationException($"gcc failed on {source}: {r.Stderr}");
            return output;
        }
    }

    record RunResult(int ExitCode, string Stdout, string Stderr, double Seconds, double RunSeconds = 0, double TotalSeconds = 0);

    /// <summary>A console that keeps what the program prints on stdout; <see cref="LineSeen"/>, when set, is called with
    /// each complete line as it arrives (on the thread that writes it).</summary>
    sealed class CapturingConsole : IConsole
    {
        private readonly StringBuilder _out = new();
        private int _lineStart;
        public Action<string>? LineSeen { get; init; }

        public string Text
        {
            get { lock (_out) return _out.ToString(); }
        }

        public void Write(int stream, ReadOnlySpan<byte> data)
        {
            if (stream != 1) return;
            lock (_out)
            {
                _out.Append(Encoding.UTF8.GetString(data));
                if (LineSeen is null) return;
                for (int i = _lineStart; i < _out.Length; i++)
                    if (_out[i] == '\n')
                    {
                        LineSeen(_out.ToString(_lineStart, i - _lineStart));
                        _lineStart = i + 1;
                    }
            }
        }
        public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
        public bool IsTerminal => false;
    }

    static class Measure
    {
        public static double Median(int n, Func<double> f)
        {
            var xs = Enumerable.Range(0, n).Select(_ => f()).OrderBy(x => x).ToArray();
            return xs[xs.Length / 2];
        }

        /// <summary>The number after <paramref name="name"/> at the start of a line of <paramref name="output"/>.</summary>
        public static double Field(string output, string name)
        {
            foreach (var line in output.Split('\n'))
                if (line.StartsWith(name + " ", StringComparison.Ordinal))
                    return double.Parse(line[(name.Length + 1)..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            throw new InvalidOperationException($"no {name} in: {output}");
        }

        /// <summary>Runs a native program to its end, started with posix_spawn (exec'd by /bin/sh, so the shell costs a
        /// few hundred microseconds of the wall time), never with System.Diagnostics.Process (see the top).</summary>
        public static RunResult Native(string file, params string[] args)
        {
            static string Quote(string a) => "'" + a.Replace("'", "'\\''") + "'";
            string command = "exec " + string.Join(' ', new[] { file }.Concat(args.Where(a => a.Length > 0)).Select(Quote));
            var sw = Stopwatch.StartNew();
            using var p = Remus.Sandbox.Platform.ChildProcess.StartShell(command);
            p.Stdin.Dispose();
            var so = Task.Run(() => new StreamReader(p.Stdout).ReadToEnd());
            var se = Task.Run(() => new StreamReader(p.Stderr).ReadToEnd());
            int status = p.WaitForExit(Timeout.InfiniteTimeSpan) ?? -1;
            double s = sw.Elapsed.TotalSeconds;
            return new RunResult(status, so.Result, se.Result, s);
        }

        public static RunResult InDomain(PlatformKind platform, string program, params string[] args)
        {
            var console = new CapturingConsole();
            var total = Stopwatch.StartNew();
            using var d = SandboxDomain.Create(new DomainSpec { ProgramPath = program, Args = args, Platform = platform }, console);
            var run = Stopwatch.StartNew();
            int status = d.Run();
            double runS = run.Elapsed.TotalSeconds, totalS = total.Elapsed.TotalSeconds;
            return new RunResult(status, console.Text, "", runS, runS, totalS);
        }
    }
}
