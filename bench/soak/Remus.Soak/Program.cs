// remus-soak: the Remus soak harness (issue 11 item 3; --help says what it does). Not CI: a run of 100 rounds takes
// minutes. CI runs a few rounds of the same round code (tests/Remus.Tests/Hardening/SoakShortTests).
using System.Diagnostics;
using Remus.Sandbox.Platform;
using Remus.Soak;
using Remus.Soak.Harness;
using Remus.Soak.Rounds;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(SoakOptions.Help);
    return 0;
}
SoakOptions options;
try { options = SoakOptions.Parse(args); }
catch (ArgumentException e)
{
    Console.Error.WriteLine($"remus-soak: {e.Message}");
    return 2;
}

var platforms = options.Platforms.Where(p =>
{
    var test = p == PlatformKind.Kvm ? PlatformSelection.KvmSelfTest : PlatformSelection.PtraceSelfTest;
    if (!test.Passed) Console.WriteLine($"(no {PlatformSelection.NameOf(p)} here: {test.Problem}; its rounds are left out)");
    return test.Passed;
}).ToList();
if (platforms.Count == 0 && options.Replay is null)
{
    Console.Error.WriteLine("remus-soak: none of the platforms asked for works on this machine");
    return 2;
}

var setup = new SoakRound.Setup(Loopback.FindRemusDll(), Ticker.Build(), options.TimeoutMs);
var seeds = new List<int>();
if (options.Replay is { } one) seeds.Add(one);
else
{
    // Rounds spread evenly over kind x platform; each seed names its own kind and platform (RoundPlan.From).
    var combos = (from p in platforms from k in options.Kinds select (Kind: k, Platform: p)).ToList();
    var random = new Random(options.Seed);
    for (int i = 0; i < options.Rounds; i++)
    {
        var (kind, platform) = combos[i % combos.Count];
        int low = Array.IndexOf(RoundPlan.Platforms, platform) * 4 + Array.IndexOf(RoundPlan.Kinds, kind);
        seeds.Add((random.Next() & ~7) | low);
    }
}

Console.WriteLine(options.Replay is { } r
    ? $"remus-soak: replaying seed {r}{(options.Hog ? ", with a CPU hog" : "")}; backup --timeout {options.TimeoutMs} ms; load {Load()}"
    : $"remus-soak: {seeds.Count} rounds, seed {options.Seed}, platforms {string.Join(",", platforms.Select(PlatformSelection.NameOf))}, " +
      $"kinds {string.Join(",", options.Kinds.Select(RoundPlan.KindName))}{(options.Hog ? ", with a CPU hog" : "")}; backup --timeout {options.TimeoutMs} ms; " +
      $"{Environment.ProcessorCount} cores, load {Load()}");
var results = new List<RoundResult>();
var wall = Stopwatch.StartNew();
using (var hog = options.Hog ? new CpuHog(Environment.ProcessorCount) : null)
{
    if (hog is not null) Console.WriteLine($"hog: busy processes {string.Join(", ", hog.Pids)}");
    for (int i = 0; i < seeds.Count; i++)
    {
        var plan = RoundPlan.From(seeds[i]);
        Console.WriteLine($"round {i + 1}/{seeds.Count} seed {plan.Seed}: {plan.Describe()}");
        var result = SoakRound.Run(plan, setup);
        results.Add(result);
        string head = result.Failure is null ? "" : result.Failure.Split('\n')[0];
        Console.WriteLine($"  {result.Verdict.ToString().ToUpperInvariant()} in {result.Seconds:F1} s: {result.Outcome}{(head.Length > 0 ? $" -- {head}" : "")}");
        if (result.Verdict != Verdict.Passed && result.Failure is not null)
        {
            // Everything the round knows (the parties' stderr and logs, the records on the channel), kept for the report.
            string file = Path.Combine(Path.GetTempPath(), $"remus-soak-{plan.Seed}.txt");
            File.WriteAllText(file, $"seed {plan.Seed}: {plan.Describe()}\n{result.Outcome}\n{result.Failure}\n");
            Console.WriteLine($"  details: {file}");
            if (options.Verbose) Console.WriteLine(Indent(result.Failure!));
        }
    }
}

try { Directory.Delete(Path.GetDirectoryName(setup.Ticker)!, recursive: true); } catch (IOException) { } // the ticker built for this run

var failed = results.Where(x => x.Verdict == Verdict.Failed).ToList();
var missed = results.Where(x => x.Verdict == Verdict.Missed).ToList();
Console.WriteLine();
Console.WriteLine($"rounds: {results.Count}, passed {results.Count(x => x.Verdict == Verdict.Passed)}, failed {failed.Count}, " +
                  $"missed {missed.Count} (the fault could not be placed: not a verdict); wall time {wall.Elapsed.TotalMinutes:F1} min; load {Load()}");
Console.WriteLine("by kind and platform (passed/failed/missed):");
foreach (var g in results.GroupBy(x => (x.Plan.Kind, x.Plan.Platform)).OrderBy(g => g.Key.Platform).ThenBy(g => g.Key.Kind))
    Console.WriteLine($"  {RoundPlan.KindName(g.Key.Kind),-12} {PlatformSelection.NameOf(g.Key.Platform),-7} " +
                      $"{g.Count(x => x.Verdict == Verdict.Passed)}/{g.Count(x => x.Verdict == Verdict.Failed)}/{g.Count(x => x.Verdict == Verdict.Missed)}  " +
                      $"median {Median(g.Select(x => x.Seconds)):F1} s");
Console.WriteLine("by moment (passed/failed/missed):");
foreach (var g in results.GroupBy(x => x.Plan.Moment).OrderBy(g => g.Key))
    Console.WriteLine($"  {g.Key,-10} {g.Count(x => x.Verdict == Verdict.Passed)}/{g.Count(x => x.Verdict == Verdict.Failed)}/{g.Count(x => x.Verdict == Verdict.Missed)}");
Console.WriteLine("outcomes:");
foreach (var g in results.Where(x => x.Verdict == Verdict.Passed).GroupBy(x => OutcomeClass(x.Outcome)).OrderByDescending(g => g.Count()))
    Console.WriteLine($"  {g.Count(),4}  {g.Key}");
if (failed.Count > 0)
{
    Console.WriteLine("failures (replay each with the command shown):");
    foreach (var f in failed)
    {
        Console.WriteLine($"  seed {f.Plan.Seed}: {f.Plan.Describe()}: {f.Outcome}");
        Console.WriteLine($"    remus-soak --replay {f.Plan.Seed}{(options.Hog ? " --hog" : "")} --timeout {options.TimeoutMs} --verbose");
        if (!options.Verbose) Console.WriteLine(Indent(string.Join('\n', f.Failure!.Split('\n').Take(12))));
    }
}
foreach (var m in missed) Console.WriteLine($"  missed: seed {m.Plan.Seed} ({m.Outcome})");
return failed.Count == 0 ? 0 : 1;

static string Load() => File.ReadAllText("/proc/loadavg").Trim();

static double Median(IEnumerable<double> xs)
{
    var a = xs.Order().ToArray();
    return a.Length == 0 ? 0 : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
}

static string Indent(string text) => string.Join('\n', text.Split('\n').Select(l => "      " + l));

// "backup took over from checkpoint 37, 12 lines re-emitted (bound 60)" -> "backup took over"
static string OutcomeClass(string outcome) =>
    outcome.Split(',')[0].Split(" from checkpoint")[0].Split(" after the program's exit")[0];
