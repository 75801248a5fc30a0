using Remus.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>
/// The Remus fault-injection harness in CI (issue 15): seeds of the scenarios the protocol in this tree survives
/// (<see cref="ScenarioSets.Ci"/>), each run checked against the guarantee; and the proof that the harness catches a
/// broken output commit. `remus-bench simulate` runs thousands of seeds of every scenario.
/// </summary>
public class FaultInjectionTests(ITestOutputHelper output)
{
    private const int SeedsPerBlock = 80;

    public static TheoryData<int> Blocks => [0, 1, 2, 3];

    /// <summary>
    /// A run the machine itself stalled for longer than half the timeout (a loaded CI host, a GC pause) faced a fault
    /// nobody injected; today's protocol does not survive that one (finding 1), so until the fixes land such a run
    /// says nothing about the scenario and is set aside (and counted). Afterwards every run counts.
    /// </summary>
    private static bool Conclusive(SimulationResult r) => ScenarioSets.ProtocolFixesLanded || !r.MachineStalled;

    [Theory]
    [MemberData(nameof(Blocks))]
    public void The_guarantee_holds_under_every_fault_the_protocol_survives(int block)
    {
        var seeds = Enumerable.Range(block * SeedsPerBlock + 1, SeedsPerBlock);
        var results = SimulationBatch.Run(seeds.Select(s => Scenario.FromSeed(s, ScenarioSets.Ci, SimProfile.Ci)));
        output.WriteLine(SimulationBatch.Table(results));
        var failed = results.Where(r => !r.Passed && Conclusive(r)).ToList();
        int setAside = results.Count(r => !Conclusive(r));
        if (setAside > 0) output.WriteLine($"{setAside} runs set aside: the machine stalled the process for more than half the timeout");
        Assert.True(failed.Count == 0,
            $"{failed.Count} seeds broke the guarantee:\n" + string.Concat(failed.Take(3).Select(r => r.Report(maxChunks: 150, maxEvents: 150))));
    }

    /// <summary>
    /// The harness must fail when output commit is broken: the same failovers (the primary dies while sending an
    /// epoch) with the guest writing straight to the world, or with each epoch's output released when sealed instead
    /// of when acked. The backup then re-runs output the world already saw: a rollback the checker must see.
    /// </summary>
    [Theory]
    [InlineData(Mutation.GuestBypassesOutputCommit)]
    [InlineData(Mutation.ReleaseBeforeAck)]
    public void The_harness_catches_output_released_before_the_backup_has_it(Mutation mutation)
    {
        var scenarios = Enumerable.Range(1, 24).Select(s => Scenario.Make(ScenarioKind.PrimaryKilledMidSend, s, SimProfile.Ci));
        var results = SimulationBatch.Run(scenarios, mutation);
        output.WriteLine(SimulationBatch.Table(results));
        int tookOver = results.Count(r => r.TookOver), caught = results.Count(r => !r.Passed);
        output.WriteLine($"{mutation}: {caught} of {results.Count} seeds show a violation ({tookOver} failovers)");
        Assert.True(caught >= 3 && caught * 2 >= tookOver, $"{mutation}: only {caught} of {tookOver} failovers show a violation");
        Assert.All(results.Where(r => !r.Passed), r => Assert.Contains(r.Violations, v => v.StartsWith("rollback", StringComparison.Ordinal)));
    }
}
