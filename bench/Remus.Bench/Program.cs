// Remus benchmarks that print figures (never assertions). Usage: remus-bench [cpu|syscall|start|save|migrate|remus|writer|failover|spawn|dirtylog|simulate|all] [--runs N]
// Each figure is the median of N runs (default 5; failover: 10) with this machine's baseline beside it, as a ratio.
// failover [--runs N] [--timeout MS]: through the remus CLI and real VMM processes (FailoverBench); --timeout is the backup's.
using System.Diagnostics;
using System.Text;
using Remus.Bench;
using Remus.Sandbox;

string which = args.FirstOrDefault(a => !a.StartsWith("--")) ?? "all";
int runs = args.SkipWhile(a => a != "--runs").Skip(1).Select(int.Parse).FirstOrDefault(5);
if (which == "simulate") return SimulationBench.Run(args); // the Remus fault-injection harness over many seeds
if (which == "spawn-probe") return SpawnProbe(args[1], runs); // the child of SpawnBench: no Process before it measures
var guests = new GuestBinaries();

if (which is "cpu" or "all") CpuBench();
if (which is "syscall" or "all") SyscallBench();
if (which is "start" or "all") StartBench();
if (which is "save" or "all") CheckpointBenches.SaveRestore(guests, runs);
if (which is "migrate" or "all") CheckpointBenches.Migration(guests, runs);
if (which is "remus" or "all") CheckpointBenches.Remus(guests, runs);
if (which is "writer") CheckpointBenches.Writer(guests, runs); // parts of remus, alone
if (which is "failover")
    FailoverBench.Run(guests, args.Contains("--runs") ? runs : 10,
        args.SkipWhile(a => a != "--timeout").Skip(1).Select(int.Parse).FirstOrDefault(1000));
if (which is "spawn" or "all") SpawnBench();
if (which is "dirtylog") CheckpointBenches.DirtyLog(guests, runs);
return 0;

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
    double Syscall() => Measure.Median(runs, () => ParseNs(Measure.InDomain(guest, "20000").Stdout)) / 1000;
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

void CpuBench()
{
    string cpu = guests.Build("cpu.c");
    var native = Measure.Median(runs, () => Measure.Native(cpu, "20").Seconds);
    var domain = Measure.Median(runs, () => Measure.InDomain(cpu, "20").RunSeconds);
    Console.WriteLine($"cpu-bound guest: native {native:F3} s, in a domain {domain:F3} s, speed ratio {native / domain:F3} (goal >= 0.98; median of {runs})");
}

void SyscallBench()
{
    string guest = guests.Build("syscalls.c");
    string probe = guests.BuildProbe("ptrace-roundtrip.c");
    double bare = Measure.Median(runs, () => ParseNs(Measure.Native(probe, "20000").Stdout));
    // In this process .NET has a SIGCHLD handler (the native baselines are run with Process), and every ptrace stop
    // of the vCPU raises SIGCHLD: that would charge the domain for the benchmark's own plumbing. The figure is taken
    // through `remus run` (REMUS_DLL), which uses no Process, as a user's domain runs.
    string? cli = Environment.GetEnvironmentVariable("REMUS_DLL");
    double dom = cli != null
        ? Measure.Median(runs, () => ParseNs(Measure.Native("dotnet", cli, "run", guest, "20000").Stdout))
        : Measure.Median(runs, () => ParseNs(Measure.InDomain(guest, "20000").Stdout));
    if (cli == null) Console.WriteLine("(set REMUS_DLL to the CLI's remus.dll to measure through `remus run`; in-process figures include .NET's SIGCHLD handling)");
    double native = Measure.Median(runs, () => ParseNs(Measure.Native(guest, "200000").Stdout));
    Console.WriteLine($"syscall round trip: in a domain {dom / 1000:F1} us, bare platform round trip {bare / 1000:F1} us, ratio {dom / bare:F2} (goal <= 1.2); native syscall {native / 1000:F2} us (median of {runs})");
}

void StartBench()
{
    string t = guests.Build("true.c");
    double native = Measure.Median(runs, () => Measure.Native(t).Seconds);
    double create = Measure.Median(runs, () => Measure.InDomain(t).TotalSeconds);
    Console.WriteLine($"domain start: create+run+exit of a trivial program {create * 1000:F1} ms in-process, native exec {native * 1000:F1} ms, ratio {create / native:F1}x (median of {runs})");
    string? remus = Environment.GetEnvironmentVariable("REMUS_DLL");
    if (remus != null)
    {
        double cli = Measure.Median(runs, () => Measure.Native("dotnet", remus, "run", t).Seconds);
        Console.WriteLine($"domain start: `remus run` of a trivial program {cli * 1000:F1} ms (whole CLI process, .NET start-up included), ratio {cli / native:F1}x to native");
    }
}

static double ParseNs(string output)
{
    foreach (var line in output.Split('\n'))
        if (line.StartsWith("ns_per_call ")) return double.Parse(line[12..]);
    throw new InvalidOperationException($"no ns_per_call in: {output}");
}

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

    /// <summary>A console that keeps what the program prints.</summary>
    sealed class CapturingConsole : IConsole
    {
        public readonly StringBuilder Out = new();
        public void Write(int stream, ReadOnlySpan<byte> data) { if (stream == 1) Out.Append(Encoding.UTF8.GetString(data)); }
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

        public static RunResult Native(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in args.Where(a => a.Length > 0)) psi.ArgumentList.Add(a);
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            double s = sw.Elapsed.TotalSeconds;
            return new RunResult(p.ExitCode, so.Result, se.Result, s);
        }

        public static RunResult InDomain(string program, params string[] args)
        {
            var console = new CapturingConsole();
            var total = Stopwatch.StartNew();
            using var d = SandboxDomain.Create(new DomainSpec { ProgramPath = program, Args = args }, console);
            var run = Stopwatch.StartNew();
            int status = d.Run();
            double runS = run.Elapsed.TotalSeconds, totalS = total.Elapsed.TotalSeconds;
            return new RunResult(status, console.Out.ToString(), "", runS, runS, totalS);
        }
    }
}
